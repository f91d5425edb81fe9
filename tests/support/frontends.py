"""Real front-end servers for end-to-end tests: nginx and Apache 2.4, each run in
the foreground from a config generated into a tmp dir, listening on 127.0.0.1
only, and stopped by PID (the master's, then any child it left), never by name.

    with Nginx(tmp / "nginx", server_block) as ngx: ...      # ngx.port
    with Apache(tmp / "apache", body, modules) as ap: ...     # ap.port

``skip_unless(program)`` skips a test (with the reason) when a program or Apache
module is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import free_port, kill_tree, remember_descendants, wait_for

APACHE_MODULES = Path("/usr/lib/apache2/modules")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )


def apache_binary() -> str | None:
    return shutil.which("apache2") or (
        "/usr/sbin/apache2" if os.path.exists("/usr/sbin/apache2") else None
    )


def require_nginx() -> str:
    path = nginx_binary()
    if not path:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    return path


def require_apache(modules: list[str]) -> str:
    path = apache_binary()
    if not path:
        pytest.skip("apache2 is not installed (.ci/run installs Debian's apache2)")
    missing = [m for m in modules if not (APACHE_MODULES / f"mod_{m}.so").exists()]
    if missing:
        pytest.skip(f"Apache modules missing from {APACHE_MODULES}: {', '.join(missing)}")
    return path


def _accepts(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class _Front:
    """A foreground server process and everything it forked, stopped by PID."""

    name = "server"

    def __init__(self, directory: Path, argv: list[str]) -> None:
        self.dir = directory
        self.argv = argv
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._known: set[int] = set()

    def log(self) -> str:
        out = []
        for path in sorted(self.dir.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def __enter__(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        out = open(self.dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
        )
        out.close()
        self._known.add(self.proc.pid)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log()}"
                )
            return _accepts(self.port)

        wait_for(up, 15, what=f"{self.name} on port {self.port}")
        remember_descendants(self.proc.pid, self._known)
        return self

    def __exit__(self, *exc) -> None:
        kill_tree(self.proc, self._known, grace=10)

    def write_config(self) -> None:
        raise NotImplementedError


class Nginx(_Front):
    """nginx with one ``server`` block; ``{port}`` in the block is its listening port.
    Debian's ``*_params`` files are copied beside the config, so ``include
    uwsgi_params;`` works as in /etc/nginx."""

    name = "nginx"

    def __init__(self, directory: Path, server_block: str) -> None:
        super().__init__(directory, [])
        self.server_block = server_block
        self.argv = [require_nginx(), "-c", str(directory / "nginx.conf"), "-p", str(directory)]

    def write_config(self) -> None:
        d = self.dir
        # workers run as the invoking user (as root: root, so they can use the tmp dir)
        user = "user root root;" if os.geteuid() == 0 else ""
        block = self.server_block.replace("{port}", str(self.port))
        # "include uwsgi_params;" in a server block is relative to the config's directory
        for params in Path("/etc/nginx").glob("*_params"):
            shutil.copy(params, d / params.name)
        (d / "nginx.conf").write_text(
            f"""{user}
daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 100m;
{block}
}}
"""
        )


class Apache(_Front):
    """Apache 2.4 (mpm_event) with ``modules`` loaded and ``body`` appended;
    ``{port}`` in the body is its listening port."""

    name = "apache2"

    def __init__(self, directory: Path, body: str, modules: list[str]) -> None:
        modules = ["mpm_event", "authz_core", *modules]
        binary = require_apache(modules)
        super().__init__(directory, [binary, "-f", str(directory / "httpd.conf"), "-DFOREGROUND"])
        self.body = body
        self.modules = modules

    def write_config(self) -> None:
        d = self.dir
        loads = "\n".join(
            f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in self.modules
        )
        # as root Apache's children switch to an unprivileged user (and refuse root)
        user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
        (d / "httpd.conf").write_text(
            f"""ServerRoot {d}
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile {d}/httpd.pid
DefaultRuntimeDir {d}
ErrorLog {d}/error.log
LogLevel warn
{loads}
{user}ThreadsPerChild 25
{self.body.replace("{port}", str(self.port))}
"""
        )
