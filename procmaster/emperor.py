"""The Emperor: one process that runs a procmaster master ("vassal") per INI file.

Theory of operation
-------------------
``procmaster --emperor DIR`` (or a glob, repeatable, or ``emperor =`` in an INI)
supervises one ``procmaster --ini FILE`` per ``*.ini`` found. A vassal is just
that command: the Emperor knows nothing of sockets, protocols, WSGI or workers.

* **Finding vassals.** Each pattern (``DIR`` means ``DIR/*.ini``) is expanded one
  path component at a time, which also yields the directories worth watching and,
  in each, the names that matter (the next component's pattern). Symlinks are
  followed (Debian's ``apps-enabled`` -> ``apps-available``): the directory of a
  link's target is watched for the target's name too, and the vassal is started
  with the target's path, so its ``%d`` and ``%n`` are the real file's.
* **inotify, no polling.** One inotify watch per interesting directory. An event
  on an interesting name schedules a re-scan (debounced: a burst of events makes
  one). The re-scan compares each file's signature (inode and mtime of the link
  and of its target, and the target's path) with the last one: a new path starts
  a vassal, a changed signature reloads it (``touch``, ``touch --no-dereference``
  on the link, an editor's save), a vanished path stops it; a rename is a stop
  and a start (the new vassal waits until the old one, same inode, has gone, so
  it can bind the same ports). Other vassals are not touched.
* **Config errors.** Before a vassal starts or reloads, its config is read here
  (``procmaster.config.load`` never starts anything). An invalid INI is logged
  once with file:line, and tried again only when the file changes: no crash loop.
  A running vassal whose INI became invalid keeps running.
* **Supervision.** A vassal that dies is started again at once if it had been up
  and ready for at least ``emperor-throttle``; otherwise after a back-off that
  doubles from ``emperor-throttle`` up to ``emperor-max-throttle`` (milliseconds,
  as uWSGI). The Emperor is a child subreaper, so the workers of a vassal killed
  with SIGKILL are reaped here too.
* **The pipe.** Each vassal gets one end of a socketpair; its fd number is in
  ``PROCMASTER_EMPEROR_FD`` (uWSGI's ``UWSGI_EMPEROR_FD``). The vassal writes
  ``ready`` once its workers are ready (again after each reload); the Emperor
  writes ``stop`` or ``reload``. The vassal side is ``EmperorLink``, used by the
  master. A vassal asks the kernel for SIGKILL when the Emperor dies
  (``PR_SET_PDEATHSIG``) and also stops when the pipe reaches EOF: no orphans.
* **Signals.** SIGHUP: re-scan (and retry vassals waiting out a back-off or an
  invalid INI). SIGTERM: ``stop`` to every vassal, wait, exit 0. SIGINT/SIGQUIT:
  immediate stop of every vassal.
* **systemd.** With ``NOTIFY_SOCKET`` set, ``READY=1`` is sent once every vassal
  that can start has started (ready, or known broken); ``STOPPING=1`` on stop.
* **Stats.** ``emperor-stats = ADDRESS``: each connection gets one JSON document
  (every vassal's INI, pid, state, restarts, last start) and is closed.

Must not know: protocols, WSGI, workers (a vassal is just ``procmaster --ini``).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

# light: the emperor imports the rest of procmaster only where it needs it
from .ipc import EMPEROR_FD_ENV, PRIVATE_ENV, describe_exit

__all__ = ["EMPEROR_FD_ENV", "Emperor", "EmperorLink", "run", "sd_notify"]

DEBOUNCE = 0.1  # seconds of quiet after a file event before re-scanning
DEBOUNCE_MAX = 1.0  # ... but never later than this after the first event
PR_SET_CHILD_SUBREAPER = 36
HANDLED_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD)


# -- the vassal's side -----------------------------------------------------------------


class EmperorLink:
    """A master's end of the pipe to its Emperor (when it runs as a vassal)."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.buf = b""
        self.ready_sent = False

    @classmethod
    def from_environ(cls) -> EmperorLink | None:
        """The link named by ``PROCMASTER_EMPEROR_FD``, or None (not a vassal)."""
        raw = os.environ.get(EMPEROR_FD_ENV, "")
        if not raw.isdigit():
            return None
        fd = int(raw)
        try:
            os.fstat(fd)
        except OSError:
            return None
        return cls(fd)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[str] | None:
        """The messages that arrived, or None when the Emperor has gone (EOF)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return None
            if not data:
                return None
            self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [line.decode("ascii", "replace").strip() for line in lines if line.strip()]

    def send(self, message: str) -> None:
        """Tell the Emperor ``message`` (``ready``); a gone Emperor is not an error."""
        if message == "ready":
            self.ready_sent = True
        try:
            self.sock.send(message.encode() + b"\n")
        except OSError:
            pass


# -- systemd -----------------------------------------------------------------------------


def sd_notify(state: str) -> bool:
    """Send ``state`` (``READY=1`` ...) to systemd's ``NOTIFY_SOCKET``, if any
    (the master's notifier speaks the protocol; the emperor only needs to send)."""
    from .systemd import Notifier

    notifier = Notifier()
    sent = notifier.send(state)
    if notifier.sock is not None:
        notifier.sock.close()
    return sent


# -- finding vassal files ----------------------------------------------------------------


def _split_pattern(pattern: str) -> list[str]:
    """``DIR`` -> ``DIR/*.ini``; an absolute, normalised pattern split in components."""
    pattern = os.path.abspath(os.path.expanduser(pattern))
    if not glob.has_magic(pattern) and not pattern.endswith(".ini"):
        pattern = os.path.join(pattern, "*.ini")
    return [c for c in pattern.split("/") if c]


def _matches(name: str, component: str) -> bool:
    if name.startswith(".") and not component.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, component)


def expand(pattern: str, interest: dict[str, set[str]]) -> list[str]:
    """The files ``pattern`` matches now (symlinks followed, absolute, sorted).

    Adds to ``interest`` every directory to watch -> the name patterns in it that
    matter (a missing fixed prefix: its nearest existing ancestor).
    """
    parts = _split_pattern(pattern)
    level = ["/"]
    for i, component in enumerate(parts):
        last = i == len(parts) - 1
        found = []
        for directory in level:
            interest.setdefault(directory, set()).add(component)
            if glob.has_magic(component):
                try:
                    names = sorted(os.listdir(directory))
                except OSError:
                    continue
                candidates = [n for n in names if _matches(n, component)]
            else:
                candidates = [component]
            for name in candidates:
                path = os.path.join(directory, name)
                if (os.path.isfile(path) if last else os.path.isdir(path)) and os.access(
                    path, os.R_OK
                ):
                    found.append(path)
        if last:
            return sorted(found)
        # fixed components above the first existing one: only the deepest existing
        # ancestor is watched (for the missing one to appear), not every ancestor
        if not glob.has_magic(component) and found and len(level) == 1:
            parent = level[0]
            if not any(glob.has_magic(c) for c in parts[:i]):
                interest[parent].discard(component)
                if not interest[parent]:
                    del interest[parent]
        level = found
        if not level:
            return []
    return []


def signature(path: str) -> tuple | None:
    """What changes when the file (or the symlink to it) is edited, touched, replaced."""
    try:
        link = os.lstat(path)
        real = os.path.realpath(path)
        target = os.stat(real)
    except OSError:
        return None
    return (link.st_ino, link.st_mtime_ns, real, target.st_dev, target.st_ino, target.st_mtime_ns)


# -- the Emperor ----------------------------------------------------------------------------


class Vassal:
    """One INI file and the master running it."""

    def __init__(self, path: str, sig: tuple) -> None:
        self.path = path  # as found (a symlink stays a symlink)
        self.sig = sig
        self.real = sig[2]
        self.name = os.path.basename(path)
        self.proc: subprocess.Popen | None = None
        self.link: socket.socket | None = None
        self.buf = b""
        self.state = "new"
        self.restarts = 0
        self.last_start = 0.0  # time.time()
        self.started = 0.0  # time.monotonic()
        self.ready_once = False
        self.failures = 0  # deaths in a row without a healthy run
        self.restart_at = 0.0
        self.kill_at = 0.0
        self.wait_for: Vassal | None = None  # a leaving vassal of the same file
        self.error: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stats(self) -> dict:
        return {
            "ini": self.path,
            "real": self.real,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "last_start": round(self.last_start, 3) if self.last_start else None,
            "ready": self.state == "ready",
            "error": self.error,
        }


class Emperor:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        cwd = os.getcwd()
        self.patterns: list[str] = [os.path.join(cwd, p) for p in cfg.emperor]
        self.inherit = [os.path.join(cwd, p) for p in cfg.get("vassals-inherit") or []]
        self.include = [os.path.join(cwd, p) for p in cfg.get("vassals-include") or []]
        self.sets: list[str] = list(cfg.get("vassal-set") or [])
        self.throttle = max(int(cfg.get("emperor-throttle")), 1) / 1000.0
        self.max_throttle = max(int(cfg.get("emperor-max-throttle")) / 1000.0, self.throttle)
        self.stop_mercy = float(cfg.reload_mercy) + 5.0
        self.tyrant = bool(cfg.get("emperor-tyrant")) and os.geteuid() == 0
        self.vassals: dict[str, Vassal] = {}  # path -> vassal
        self.leaving: list[Vassal] = []  # stopping, replaced or removed
        self.by_pid: dict[int, Vassal] = {}
        self.sel = selectors.DefaultSelector()
        self.signal_r = -1
        self.inotify = None
        self.wd_dir: dict[int, str] = {}
        self.dir_wd: dict[str, int] = {}
        self.interest: dict[str, set[str]] = {}
        self.scan_due = 0.0
        self.scan_first = 0.0
        self.stopping = False
        self.stop_signal = 0
        self.notified_ready = False
        self.stats_sock: socket.socket | None = None
        self.stats_path: str | None = None

    # -- start-up ----------------------------------------------------------------------

    def run(self) -> int:
        from .logs import log

        log.configure(self.cfg)
        for line in self.cfg.warnings:
            log(f"warning: {line}")
        if self.cfg.sockets_in_order() or self.cfg.get("module") or self.cfg.get("wsgi-file"):
            log("warning: the emperor serves no app itself: its socket and app options are ignored")
        if self.cfg.get("emperor-tyrant") and not self.tyrant:
            log("warning: emperor-tyrant has no effect: the emperor does not run as root")
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - Linux has prctl
            pass
        self.setup_signals()
        self.setup_inotify()
        if self.cfg.get("emperor-stats"):
            error = self.setup_stats(self.cfg.get("emperor-stats"))
            if error:
                log(f"error: {self.cfg.origin('emperor-stats')}: emperor-stats: {error}")
                return 1
        self.write_pidfile()
        log(f"emperor pid {self.pid}: watching {', '.join(self.patterns)}")
        self.scan()
        return self.loop()

    def setup_signals(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.signal_r = r
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, lambda signum, frame: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(r, selectors.EVENT_READ, ("signal", None))

    def setup_inotify(self) -> None:
        from inotify_simple import INotify, flags

        self.inotify = INotify(nonblocking=True)
        self.flags = flags
        # no IN_MODIFY: a log file written next to the INIs must not wake us up
        self.mask = (
            flags.ATTRIB
            | flags.CLOSE_WRITE
            | flags.CREATE
            | flags.DELETE
            | flags.MOVED_FROM
            | flags.MOVED_TO
            | flags.DELETE_SELF
            | flags.MOVE_SELF
        )
        self.sel.register(self.inotify.fileno(), selectors.EVENT_READ, ("inotify", None))

    def setup_stats(self, address: str) -> str | None:
        from .options import parse_address

        addr = parse_address(address)
        try:
            if addr.kind == "tcp":
                family = socket.AF_INET6 if addr.ipv6 else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((addr.host or ("::" if addr.ipv6 else "0.0.0.0"), addr.port))
            else:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                if addr.kind == "abstract":
                    sock.bind("\0" + addr.path)
                else:
                    try:
                        os.unlink(addr.path)
                    except FileNotFoundError:
                        pass
                    sock.bind(addr.path)
                    self.stats_path = addr.path
            sock.listen(16)
        except OSError as exc:
            return f"cannot bind {address}: {exc.strerror or exc}"
        sock.setblocking(False)
        self.stats_sock = sock
        self.sel.register(sock, selectors.EVENT_READ, ("stats", None))
        return None

    def write_pidfile(self) -> None:
        from .logs import log

        path = self.cfg.get("emperor-pidfile")
        if not path:
            return
        try:
            tmp = f"{path}.tmp{self.pid}"
            with open(tmp, "w") as fh:
                fh.write(f"{self.pid}\n")
            os.replace(tmp, path)
        except OSError as exc:
            log(f"warning: cannot write emperor-pidfile {path!r}: {exc.strerror}")

    def remove_pidfile(self) -> None:
        path = self.cfg.get("emperor-pidfile")
        if path:
            try:
                with open(path) as fh:
                    if fh.read().strip() == str(self.pid):
                        os.unlink(path)
            except OSError:
                pass

    # -- the loop ---------------------------------------------------------------------------

    def loop(self) -> int:
        while True:
            for key, _ in self.sel.select(self.next_timeout()):
                kind, vassal = key.data
                if kind == "signal":
                    self.handle_signals()
                elif kind == "inotify":
                    self.handle_inotify()
                elif kind == "link":
                    self.handle_link(vassal)
                elif kind == "stats":
                    self.handle_stats()
            self.reap()
            now = time.monotonic()
            if self.scan_due and now >= self.scan_due and not self.stopping:
                self.scan()
            self.kill_late(now)
            self.restart_due(now)
            self.check_all_started()
            if self.stopping and not self.by_pid:
                return self.stopped()

    def next_timeout(self) -> float | None:
        deadlines = [v.kill_at for v in self.by_pid.values() if v.kill_at]
        if not self.stopping:
            deadlines.extend(v.restart_at for v in self.vassals.values() if v.state == "throttled")
            if self.scan_due:
                deadlines.append(self.scan_due)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def handle_signals(self) -> None:
        try:
            data = os.read(self.signal_r, 256)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGHUP:
                self.rescan_all()
            elif signum == signal.SIGTERM:
                self.stop_all(signal.SIGTERM)
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                self.stop_all(signum)

    def handle_inotify(self) -> None:
        flags = self.flags
        relevant = False
        for event in self.inotify.read(timeout=0):
            if event.wd == -1 or event.mask & flags.Q_OVERFLOW:
                relevant = True
                continue
            directory = self.wd_dir.get(event.wd)
            if directory is None:
                continue
            if event.mask & flags.IGNORED:  # the directory went away
                self.wd_dir.pop(event.wd, None)
                self.dir_wd.pop(directory, None)
                relevant = True
                continue
            if event.mask & (flags.DELETE_SELF | flags.MOVE_SELF):
                relevant = True
                continue
            names = self.interest.get(directory, ())
            if any(_matches(event.name, pattern) for pattern in names):
                relevant = True
        if relevant:
            now = time.monotonic()
            if not self.scan_due:
                self.scan_first = now
            self.scan_due = min(now + DEBOUNCE, self.scan_first + DEBOUNCE_MAX)

    # -- scanning -----------------------------------------------------------------------------

    def scan(self) -> None:
        """Compare what the patterns match now with the running vassals, and act."""
        self.scan_due = 0.0
        interest: dict[str, set[str]] = {}
        found: dict[str, tuple] = {}
        for pattern in self.patterns:
            for path in expand(pattern, interest):
                sig = signature(path)
                if sig is not None and path not in found:
                    found[path] = sig
                    if sig[2] != path:  # a symlink: watch its target's name too
                        target_dir, target_name = os.path.split(sig[2])
                        interest.setdefault(target_dir, set()).add(glob.escape(target_name))
        self.update_watches(interest)
        for path in list(self.vassals):
            if path not in found:
                self.remove(self.vassals[path], "its file was removed")
        for path, sig in found.items():
            vassal = self.vassals.get(path)
            if vassal is None:
                self.add(path, sig)
            elif sig != vassal.sig:
                if sig[2] != vassal.real:  # the link now points to another file
                    self.remove(vassal, f"it now points to {sig[2]}")
                    self.add(path, sig)
                else:
                    vassal.sig = sig
                    self.changed(vassal)

    def rescan_all(self) -> None:
        from .logs import log

        if self.stopping:
            return
        log("SIGHUP: scanning the vassal files again")
        for vassal in self.vassals.values():
            if vassal.state == "throttled":
                vassal.restart_at = time.monotonic()
            elif vassal.state == "invalid":
                self.start(vassal)
        self.scan()

    def update_watches(self, interest: dict[str, set[str]]) -> None:
        for directory in list(self.dir_wd):
            if directory not in interest:
                wd = self.dir_wd.pop(directory)
                self.wd_dir.pop(wd, None)
                try:
                    self.inotify.rm_watch(wd)
                except OSError:
                    pass
        for directory in interest:
            if directory in self.dir_wd:
                continue
            try:
                wd = self.inotify.add_watch(directory, self.mask)
            except OSError:
                continue
            self.wd_dir[wd] = directory
            self.dir_wd[directory] = wd
        self.interest = interest

    # -- vassal life ----------------------------------------------------------------------------

    def argv(self, vassal: Vassal) -> list[str]:
        args: list[str] = []
        for path in self.inherit:
            args += ["--inherit", path]
        args += ["--ini", vassal.real]
        for path in self.include:
            args += ["--include", path]
        for item in self.sets:
            args += ["--set", item]
        return args

    def validate(self, vassal: Vassal) -> bool:
        """Read the vassal's config here: a broken INI is logged (once per change)."""
        from .config import ConfigError, load
        from .logs import log

        try:
            load(self.argv(vassal))
        except ConfigError as exc:
            vassal.error = str(exc)
            vassal.state = "invalid"
            log(
                f"vassal {vassal.name}: config error: {exc}\n"
                f"vassal {vassal.name}: not started; it is tried again when the file changes"
            )
            return False
        except Exception as exc:  # an unexpected reader failure must not stop the emperor
            vassal.error = repr(exc)
            vassal.state = "invalid"
            log(f"vassal {vassal.name}: cannot read its config: {exc!r}")
            return False
        vassal.error = None
        return True

    def add(self, path: str, sig: tuple) -> None:
        vassal = Vassal(path, sig)
        self.vassals[path] = vassal
        for old in self.leaving:
            if old.proc is not None and (old.path == path or old.sig[3:5] == sig[3:5]):
                vassal.wait_for = old  # the same file, renamed or replaced: let it go first
        if vassal.wait_for is not None:
            vassal.state = "waiting"
            return
        self.start(vassal)

    def changed(self, vassal: Vassal) -> None:
        from .logs import log

        if vassal.state in ("invalid", "throttled"):
            self.start(vassal)
        elif vassal.state == "waiting":
            pass
        elif vassal.proc is not None:
            if not self.validate(vassal):
                vassal.state = "ready" if vassal.ready_once else "starting"
                log(f"vassal {vassal.name}: keeps running with its previous configuration")
                return
            log(f"vassal {vassal.name}: file changed: graceful reload")
            vassal.state = "reloading"
            self.send(vassal, "reload")

    def start(self, vassal: Vassal) -> None:
        from .logs import log

        if self.stopping or not self.validate(vassal):
            return
        if self.tyrant:
            owner = self.owner(vassal)
            if owner is None:
                return
        else:
            owner = None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        env[EMPEROR_FD_ENV] = str(child.fileno())
        emperor_pid = self.pid
        extra: dict = {}
        if owner is not None:
            uid, gid, groups = owner
            extra = {"user": uid, "group": gid, "extra_groups": groups}

        from .process import die_with_parent

        def in_child() -> None:  # between fork and exec: no emperor-less vassal
            die_with_parent(emperor_pid)

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "procmaster", *self.argv(vassal)],
                cwd=os.path.dirname(vassal.real),
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(child.fileno(),),
                preexec_fn=in_child,
                **extra,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            child.close()
            parent.close()
            log(f"vassal {vassal.name}: cannot start: {exc}")
            self.died(vassal, None)
            return
        child.close()
        parent.setblocking(False)
        vassal.proc = proc
        vassal.link = parent
        vassal.buf = b""
        vassal.state = "starting"
        vassal.kill_at = 0.0
        if vassal.last_start:
            vassal.restarts += 1
        vassal.last_start = time.time()
        vassal.started = time.monotonic()
        self.by_pid[proc.pid] = vassal
        self.sel.register(parent, selectors.EVENT_READ, ("link", vassal))
        log(f"vassal {vassal.name}: started (pid {proc.pid}) from {vassal.real}")

    def owner(self, vassal: Vassal) -> tuple[int, int, list[int]] | None:
        """emperor-tyrant: the uid, gid and groups of the INI file's owner."""
        import pwd

        from .logs import log

        try:
            st = os.stat(vassal.real)
        except OSError as exc:
            log(f"vassal {vassal.name}: cannot stat: {exc.strerror}")
            return None
        if st.st_uid == 0 and not self.cfg.get("emperor-tyrant-allow-root"):
            vassal.state = "invalid"
            vassal.error = "owned by root (emperor-tyrant)"
            log(
                f"vassal {vassal.name}: refused: the file is owned by root and emperor-tyrant "
                "runs each vassal as its file's owner (emperor-tyrant-allow-root allows it)"
            )
            return None
        groups: list[int] = []
        try:
            name = pwd.getpwuid(st.st_uid).pw_name
            groups = os.getgrouplist(name, st.st_gid)
        except KeyError:
            pass
        return st.st_uid, st.st_gid, groups

    def send(self, vassal: Vassal, message: str) -> None:
        if vassal.link is None:
            return
        try:
            vassal.link.send(message.encode() + b"\n")
        except OSError:
            pass

    def handle_link(self, vassal: Vassal) -> None:
        from .logs import log

        link = vassal.link
        if link is None:
            return
        try:
            data = link.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the vassal closed its end; its exit is seen by reap()
            self.sel.unregister(link)
            link.close()
            vassal.link = None
            return
        vassal.buf += data
        *lines, vassal.buf = vassal.buf.split(b"\n")
        for line in lines:
            if line.strip() == b"ready" and vassal.state in ("starting", "reloading"):
                took = time.time() - vassal.last_start
                what = "reloaded" if vassal.state == "reloading" else f"ready in {took:.2f}s"
                vassal.state = "ready"
                vassal.ready_once = True
                log(f"vassal {vassal.name}: {what} (pid {vassal.pid})")

    def remove(self, vassal: Vassal, why: str) -> None:
        from .logs import log

        self.vassals.pop(vassal.path, None)
        if vassal.proc is None:
            log(f"vassal {vassal.name}: removed ({why})")
            return
        log(f"vassal {vassal.name}: {why}: graceful stop (pid {vassal.pid})")
        self.stop(vassal, signal.SIGTERM)
        self.leaving.append(vassal)

    def stop(self, vassal: Vassal, how: int) -> None:
        if vassal.proc is None:
            return
        vassal.state = "stopping"
        if how == signal.SIGTERM:
            if not vassal.kill_at:
                vassal.kill_at = time.monotonic() + self.stop_mercy
            self.send(vassal, "stop")
        else:
            vassal.kill_at = time.monotonic() + 5.0
            try:
                os.kill(vassal.proc.pid, how)
            except ProcessLookupError:
                pass

    def kill_late(self, now: float) -> None:
        from .logs import log

        for vassal in list(self.by_pid.values()):
            if vassal.kill_at and now >= vassal.kill_at:
                log(f"vassal {vassal.name} (pid {vassal.pid}) did not stop in time: SIGKILL")
                vassal.kill_at = now + 5.0
                try:
                    os.kill(vassal.pid, signal.SIGKILL)  # type: ignore[arg-type]
                except ProcessLookupError:
                    pass

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            vassal = self.by_pid.pop(pid, None)
            if vassal is None:
                continue  # a worker of a dead vassal, reparented to us (subreaper)
            if vassal.proc is not None:
                vassal.proc.returncode = os.waitstatus_to_exitcode(status)
            self.died(vassal, status)

    def died(self, vassal: Vassal, status: int | None) -> None:
        from .logs import log

        if vassal.link is not None:
            self.sel.unregister(vassal.link)
            vassal.link.close()
            vassal.link = None
        pid = vassal.pid
        vassal.proc = None
        vassal.kill_at = 0.0
        how = _describe(status)
        if vassal in self.leaving:
            self.leaving.remove(vassal)
            log(f"vassal {vassal.name} (pid {pid}) stopped: {how}")
            for waiting in self.vassals.values():
                if waiting.wait_for is vassal:
                    waiting.wait_for = None
                    self.start(waiting)
            return
        if self.stopping:
            log(f"vassal {vassal.name} (pid {pid}) stopped: {how}")
            vassal.state = "stopped"
            return
        now = time.monotonic()
        healthy = vassal.ready_once and vassal.state != "starting"
        healthy = healthy and now - vassal.started >= self.throttle
        if healthy:
            vassal.failures = 0
            delay = 0.0
        else:
            vassal.failures += 1
            delay = min(self.throttle * 2 ** (vassal.failures - 1), self.max_throttle)
        vassal.ready_once = vassal.ready_once and healthy
        vassal.state = "throttled"
        vassal.restart_at = now + delay
        log(
            f"vassal {vassal.name} (pid {pid}) {how}; "
            + (f"starting it again in {delay:.1f}s (throttle)" if delay else "starting it again")
        )

    def restart_due(self, now: float) -> None:
        if self.stopping:
            return
        for vassal in list(self.vassals.values()):
            if vassal.state == "throttled" and now >= vassal.restart_at:
                self.start(vassal)

    def check_all_started(self) -> None:
        """systemd: READY=1 once every vassal that can start has started."""
        if self.notified_ready or self.stopping:
            return
        for vassal in self.vassals.values():
            if vassal.state in ("starting", "waiting", "new") or (
                vassal.state == "throttled" and not vassal.failures
            ):
                return
        self.notified_ready = True
        ready = sum(1 for v in self.vassals.values() if v.state == "ready")
        sd_notify(f"READY=1\nSTATUS={ready} of {len(self.vassals)} vassal(s) ready")
        from .logs import log

        log(f"emperor: {ready} of {len(self.vassals)} vassal(s) ready")

    # -- stats ---------------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "pid": self.pid,
            "emperor": self.patterns,
            "throttle_ms": int(self.throttle * 1000),
            "max_throttle_ms": int(self.max_throttle * 1000),
            "vassals": [v.stats() for v in sorted(self.vassals.values(), key=lambda v: v.path)],
            "leaving": [v.stats() for v in self.leaving],
        }

    def handle_stats(self) -> None:
        while True:
            try:
                conn, _ = self.stats_sock.accept()  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                conn.settimeout(1.0)
                conn.sendall(json.dumps(self.stats(), indent=1).encode() + b"\n")
            except OSError:
                pass
            finally:
                conn.close()

    # -- stopping --------------------------------------------------------------------------------------

    def stop_all(self, signum: int) -> None:
        from .logs import log

        if self.stopping and signum == signal.SIGTERM:
            return
        how = "graceful" if signum == signal.SIGTERM else "immediate"
        log(f"{signal.Signals(signum).name}: {how} stop of every vassal")
        if not self.stopping:
            sd_notify("STOPPING=1")
        self.stopping = True
        self.stop_signal = signum
        for vassal in list(self.by_pid.values()):
            self.stop(vassal, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    def stopped(self) -> int:
        from .logs import log

        if self.stats_sock is not None:
            self.stats_sock.close()
            if self.stats_path:
                try:
                    os.unlink(self.stats_path)
                except OSError:
                    pass
        self.remove_pidfile()
        log("emperor stopped")
        return 0


def _describe(status: int | None) -> str:
    return "did not start" if status is None else describe_exit(status)


def run(cfg) -> int:
    """Run the Emperor for ``cfg`` (its ``emperor`` patterns) until it stops."""
    import traceback

    from .logs import log

    try:
        return Emperor(cfg).run()
    except KeyboardInterrupt:
        return 0
    except Exception:
        log(f"internal error in the emperor:\n{traceback.format_exc()}")
        return 1
