"""Loading the WSGI application(s) a config names.

Owns: ``module`` (``pkg.mod``, ``pkg.mod:name``, the factory form
``pkg.mod:make_app()``), ``callable``, ``wsgi-file``, ``mount``, ``asgi`` (one
ASGI 3 app, checked to be an async callable: ``asgi_problem``), and the process
set-up that must happen before the import: ``env``, ``chdir``, ``virtualenv``,
``pythonpath``. ``load_apps`` returns an ``Apps`` table that maps a request path
to (app, SCRIPT_NAME, PATH_INFO).

Must not know: sockets, workers, reloads. A failure is an ``AppLoadError`` whose
message holds the app's own import traceback; the caller decides what dying means.
``KeyboardInterrupt`` and ``SystemExit`` raised while importing are not failures
of the app: they go through (Ctrl-C during a slow import stops procmaster).
"""

from __future__ import annotations

import functools
import glob
import importlib
import importlib.util
import os
import site
import sys
import traceback
from collections.abc import Callable
from importlib.machinery import SourceFileLoader

__all__ = [
    "AppLoadError",
    "Apps",
    "asgi_not_applied",
    "asgi_problem",
    "debugger_note",
    "load_apps",
    "path_problems",
    "prepare_process",
]

DEFAULT_CALLABLE = "application"
ASGI_CALLABLE = "app"  # uvicorn's and FastAPI's convention
ASGI_LOOPS = ("auto", "asyncio", "uvloop")


class AppLoadError(Exception):
    """The app could not be loaded; ``str()`` is the full report."""


class Apps:
    """Mounted apps, longest prefix first. With one app at ``""`` (the usual case)
    ``resolve`` is a constant."""

    __slots__ = ("mounts", "single")

    def __init__(self, mounts: list[tuple[str, Callable]]) -> None:
        self.mounts = sorted(mounts, key=lambda m: len(m[0]), reverse=True)
        self.single = self.mounts[0][1] if len(self.mounts) == 1 and not self.mounts[0][0] else None

    def resolve(self, path: str) -> tuple[Callable | None, str, str]:
        """(app, SCRIPT_NAME, PATH_INFO) for a request path; app None if nothing is mounted there."""
        for prefix, app in self.mounts:
            if not prefix:
                return app, "", path
            if path == prefix or path.startswith(prefix + "/"):
                return app, prefix, path[len(prefix) :]
        return None, "", path


def prepare_process(cfg) -> None:
    """``env``, ``chdir``, ``virtualenv`` and ``pythonpath``, in uWSGI's order."""
    for item in cfg.env:
        key, sep, value = item.partition("=")
        if sep:
            os.environ[key] = value
        else:
            os.environ.pop(key, None)
    if cfg.chdir:
        try:
            os.chdir(cfg.chdir)
        except OSError as exc:
            raise AppLoadError(_chdir_error(cfg, exc.strerror)) from None
    if cfg.virtualenv:
        _activate_virtualenv(cfg)
    for entry in reversed(cfg.pythonpath):
        for path in sorted(glob.glob(entry)) or [entry]:
            path = os.path.abspath(path)
            if path not in sys.path:
                sys.path.insert(0, path)
    # the app's own directory is importable, as with uWSGI (cwd on sys.path)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _chdir_error(cfg, why: str) -> str:
    return f"{cfg.origin('chdir')}: option 'chdir': cannot enter {cfg.chdir!r}: {why}"


def _virtualenv_site(cfg, venv: str) -> tuple[str, str | None]:
    """(the venv's site-packages for this Python, why it cannot be used or None)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = os.path.join(venv, "lib", version, "site-packages")
    if os.path.isdir(site_dir):
        return site_dir, None
    where = f"{cfg.origin('virtualenv')}: option 'virtualenv'"
    if not os.path.isdir(venv):
        return site_dir, f"{where}: {venv!r} does not exist (python -m venv {venv} creates it)"
    found = sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")))
    hint = f" (it has {found[0]}: made with another Python?)" if found else ""
    return site_dir, f"{where}: {venv!r} has no {site_dir!r}{hint}"


def path_problems(cfg) -> list[str]:
    """What ``prepare_process`` and ``load_apps`` would refuse about the paths of
    ``cfg`` (``chdir``, ``virtualenv``, ``wsgi-file``), found without changing this
    process: the same messages, for ``--check``."""
    base = os.getcwd()
    if cfg.chdir:
        chdir = os.path.join(base, os.path.expanduser(cfg.chdir))
        if not os.path.isdir(chdir):
            why = "No such file or directory" if not os.path.exists(chdir) else "Not a directory"
            return [_chdir_error(cfg, why)]  # everything else is relative to it
        base = chdir
    problems = []
    if cfg.virtualenv:
        venv = os.path.join(base, os.path.expanduser(cfg.virtualenv))
        problem = _virtualenv_site(cfg, os.path.normpath(venv))[1]
        if problem:
            problems.append(problem)
    if cfg.wsgi_file and not cfg.module:
        path = os.path.normpath(os.path.join(base, cfg.wsgi_file))
        if not os.path.isfile(path):
            problems.append(f"{cfg.origin('wsgi-file')}: wsgi-file {path!r} does not exist")
    return problems


def _activate_virtualenv(cfg) -> None:
    """Use that environment's site-packages and prefix, as uWSGI's ``home`` does
    (it sets the interpreter's home: here the interpreter runs already, so we put
    the venv's site-packages first and set ``sys.prefix``)."""
    venv = os.path.abspath(os.path.expanduser(cfg.virtualenv))
    site_dir, problem = _virtualenv_site(cfg, venv)
    if problem:
        raise AppLoadError(problem)
    before = list(sys.path)
    site.addsitedir(site_dir)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    sys.prefix = sys.exec_prefix = venv
    os.environ["VIRTUAL_ENV"] = venv
    bindir = os.path.join(venv, "bin")
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


# options that change where a module is looked for, and what each does
WHERE_OPTIONS = (
    "chdir (the directory the app is imported from)",
    "pythonpath (a directory added to sys.path)",
    "virtualenv (a virtualenv whose site-packages are used)",
)


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the first frame of the app's own code: the
    frames of this module and of importlib before it are ours, not the user's."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if (
            name != __file__
            and not name.startswith("<frozen importlib")
            and (os.path.basename(os.path.dirname(name)) != "importlib")
        ):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _import_failure(what: str, origin: str, exc: BaseException) -> AppLoadError:
    return AppLoadError(f"{origin}: cannot load {what}:\n{_user_traceback(exc)}")


def _not_found(module_name: str, exc: ModuleNotFoundError, origin: str) -> AppLoadError | None:
    """The module itself (or its package) is not there: say where it was looked
    for and which options change that. None when a module the app imports is
    missing: that traceback is the user's."""
    missing = exc.name or ""
    if not missing or not (module_name == missing or module_name.startswith(missing + ".")):
        return None
    lines = [f"{origin}: cannot load module {module_name!r}: no module named {missing!r}"]
    parent, _, child = missing.rpartition(".")
    package = sys.modules.get(parent) if parent else None
    if package is not None:
        where = list(getattr(package, "__path__", []) or [])
        lines.append(f"  package {parent!r} ({', '.join(where) or '?'}) has no module {child!r}")
    else:
        lines.append(
            f"  looked for {missing.replace('.', '/')}.py or {missing.replace('.', '/')}/ in:"
        )
        lines.extend(f"    {entry or '(the working directory)'}" for entry in sys.path)
    lines.append(f"  working directory: {os.getcwd()}")
    lines.append("  set where it is looked for with: " + "; ".join(WHERE_OPTIONS))
    return AppLoadError("\n".join(lines))


def _load_module_spec(spec: str, default_callable: str, origin: str) -> Callable:
    """``pkg.mod``, ``pkg.mod:name`` or ``pkg.mod:factory()``."""
    module_name, _, attr = spec.partition(":")
    attr = attr or default_callable
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise (
            _not_found(module_name, exc, origin)
            or _import_failure(f"module {module_name!r}", origin, exc)
        ) from None
    except Exception as exc:
        raise _import_failure(f"module {module_name!r}", origin, exc) from None
    return _callable_of(module, attr, call, spec, origin)


def _callable_of(module, attr: str, call: bool, spec: str, origin: str) -> Callable:
    try:
        obj = getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise AppLoadError(
            f"{origin}: {spec!r}: {module.__name__} has no callable {attr!r}"
            + (f" (it has: {', '.join(names[:10])})" if names else "")
        ) from None
    if call:
        try:
            obj = obj()
        except Exception as exc:
            raise _import_failure(f"the app factory {attr}()", origin, exc) from None
    if not callable(obj):
        raise AppLoadError(f"{origin}: {spec!r}: {attr!r} is not callable ({type(obj).__name__})")
    return obj


def _load_wsgi_file(path: str, default_callable: str, origin: str) -> Callable:
    """Execute a ``.py``/``.wsgi`` file as a module, as uWSGI's ``wsgi-file``."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise AppLoadError(f"{origin}: wsgi-file {path!r} does not exist")
    name = "procmaster_file_" + "".join(c if c.isalnum() else "_" for c in path)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            spec = importlib.util.spec_from_loader(name, SourceFileLoader(name, path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        raise _import_failure(f"wsgi-file {path!r}", origin, exc) from None
    attr = default_callable
    call = attr.endswith("()")
    return _callable_of(module, attr.rstrip("()"), call, path, origin)


def _load_target(target: str, default_callable: str, origin: str) -> Callable:
    if target.endswith((".py", ".wsgi")) or os.sep in target and os.path.exists(target):
        return _load_wsgi_file(target, default_callable, origin)
    return _load_module_spec(target, default_callable, origin)


def load_apps(cfg) -> Apps:
    """Import every app the config names. Raises ``AppLoadError``."""
    if cfg.asgi:
        return Apps([("", load_asgi_app(cfg))])
    default_callable = cfg.callable or DEFAULT_CALLABLE
    mounts: list[tuple[str, Callable]] = []
    for index, item in enumerate(cfg.mount):
        prefix, sep, target = item.partition("=")
        if not sep:
            raise AppLoadError(
                f"{cfg.origin('mount', index)}: option 'mount': expected /prefix=module-or-file, got {item!r}"
            )
        mounts.append(
            (prefix.rstrip("/"), _load_target(target, default_callable, cfg.origin("mount", index)))
        )
    if cfg.module:
        mounts.append(("", _load_module_spec(cfg.module, default_callable, cfg.origin("module"))))
    elif cfg.wsgi_file:
        mounts.append(
            ("", _load_wsgi_file(cfg.wsgi_file, default_callable, cfg.origin("wsgi-file")))
        )
    if not mounts:
        raise AppLoadError(
            "no app configured: set 'module' (pkg.mod:app), 'wsgi-file' (path.py), 'mount' "
            "or, for an ASGI app, 'asgi' (pkg.mod:app)"
        )
    for prefix, app in mounts:
        if _looks_async(app) and asgi_problem(app) is None:
            where = (
                cfg.origin("mount")
                if prefix
                else cfg.origin("module" if cfg.module else "wsgi-file")
            )
            raise AppLoadError(
                f"{where}: {_describe(app)} is an ASGI app (an async callable), not a WSGI "
                "one: load it with 'asgi = module:app' instead"
            )
    return Apps(mounts)


def load_asgi_app(cfg) -> Callable:
    """``asgi = module:app``: the one ASGI 3 app (``module:factory()`` calls a
    factory); refused with the reason when it is not an ASGI 3 app or when a
    WSGI app is configured beside it."""
    origin = cfg.origin("asgi")
    others = [name for name in ("module", "wsgi-file", "mount") if cfg.get(name)]
    if others:
        raise AppLoadError(
            f"{origin}: option 'asgi' serves one ASGI app; remove {', '.join(others)} "
            "(an instance serves either WSGI or ASGI)"
        )
    if cfg.threads > 1:
        raise AppLoadError(
            f"{origin}: option 'asgi' runs the app on each worker's asyncio loop; "
            f"threads = {cfg.threads} does not apply (remove it; raise processes instead)"
        )
    loop = cfg.asgi_loop
    if loop not in ASGI_LOOPS:
        raise AppLoadError(
            f"{cfg.origin('asgi-loop')}: option 'asgi-loop': {loop!r} is not one of "
            f"{', '.join(ASGI_LOOPS)}"
        )
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise AppLoadError(
            f"{cfg.origin('asgi-loop')}: asgi-loop = uvloop, but uvloop is not installed "
            "(pip install uvloop, or asgi-loop = auto)"
        )
    app = _load_target(cfg.asgi, ASGI_CALLABLE, origin)
    problem = asgi_problem(app)
    if problem:
        raise AppLoadError(f"{origin}: asgi = {cfg.asgi!r}: {problem}")
    return app


# what the ASGI runner does not apply (the WSGI worker's front door and threads)
ASGI_NOT_APPLIED = (
    "route",
    "static-",
    "check-static",
    "add-header",
    "del-header",
    "offload-threads",
)


def asgi_not_applied(cfg) -> list[str]:
    """The options of ``cfg`` an ASGI app is served without (sorted, once each)."""
    return sorted({e.key for e in cfg.entries if e.key.startswith(ASGI_NOT_APPLIED)})


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE


def _is_async(obj) -> bool:
    """``inspect.iscoroutinefunction`` for what apps are (functions, methods,
    partials), without importing ``inspect`` into every WSGI site's processes."""
    while True:
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, "__func__"):  # a bound method
            obj = obj.__func__
        else:
            break
    if hasattr(obj, "_is_coroutine_marker"):  # Python 3.12's markcoroutinefunction
        import inspect  # lazily: only such a marked callable needs it

        return inspect.iscoroutinefunction(obj)
    code = getattr(obj, "__code__", None)
    return bool(getattr(code, "co_flags", 0) & _CO_COROUTINE)


def _looks_async(app) -> bool:
    """An async callable or an instance with an async ``__call__`` (what
    ``asgi_problem`` examines further)."""
    return _is_async(vars(type(app)).get("__call__")) or _is_async(app)


def asgi_problem(app) -> str | None:
    """Why ``app`` is not an ASGI 3 app (an async callable taking scope,
    receive, send), or None when it is one."""
    # lazily: inspect (with ast, dis, tokenize) only for an ``asgi`` app's check
    import inspect

    call = vars(type(app)).get("__call__")  # an instance with an async __call__
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        try:
            params = inspect.signature(app).parameters
        except (TypeError, ValueError):
            return None  # a builtin or C callable: trust it
        positional = [
            p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
        if len(positional) != 3 and not varargs:
            return (
                f"{_describe(app)} is async but takes {len(positional)} positional "
                "argument(s); ASGI 3 calls app(scope, receive, send)"
            )
        return None
    if inspect.isclass(app):
        return (
            f"{_describe(app)} is a class (an ASGI 2 app?); ASGI 3 needs an async callable "
            "app(scope, receive, send) (asgiref's guarantee_single_callable wraps ASGI 2 apps)"
        )
    hint = " (it looks like a WSGI app: load it with 'module')" if _takes(app, 2) else ""
    return (
        f"{_describe(app)} is not an ASGI 3 app: expected an async callable "
        f"app(scope, receive, send){hint}"
    )


def _takes(app, count: int) -> bool:
    import inspect  # lazily: see asgi_problem

    try:
        return len(inspect.signature(app).parameters) == count
    except (TypeError, ValueError):
        return False


def _describe(app) -> str:
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    module = getattr(app, "__module__", None) or type(app).__module__
    return f"{module}.{name}"


def _is_werkzeug_debugger(obj) -> bool:
    return any(
        c.__name__ == "DebuggedApplication" and c.__module__.startswith("werkzeug")
        for c in type(obj).__mro__
    )


def debugger_note(apps: Apps, cfg) -> str | None:
    """A note for the start-up log when an app is wrapped in Werkzeug's
    ``DebuggedApplication`` (directly, or as a Flask app's ``wsgi_app``) and more
    than one worker or thread may serve it: the debugger console keeps its
    frames in the process that raised, so a session's requests must all reach it."""
    processes = cfg.processes
    threads = cfg.threads
    if processes == 1 and threads == 1:
        return None
    for prefix, app in apps.mounts:
        if _is_werkzeug_debugger(app) or _is_werkzeug_debugger(getattr(app, "wsgi_app", None)):
            where = f" (mounted at {prefix})" if prefix else ""
            return (
                f"note: the app{where} is wrapped in Werkzeug's DebuggedApplication and "
                f"{processes} worker(s) x {threads} thread(s) are configured: its interactive "
                "console keeps its state in the process that raised, so the requests of one "
                "debugging session must reach the same worker; set workers = 1 (and "
                "threads = 1) while debugging"
            )
    return None
