"""A real nginx for the end-to-end tests: its own config, pid file, temp paths
and error log in a tmp dir, run in the foreground as the current user, listening
on 127.0.0.1 ports (and unix sockets if the config says so), stopped by PID.

``start_nginx(tmp, http_body, ports=[...])`` writes ``tmp/nginx.conf`` with an
``http {}`` block holding ``http_body`` (server and upstream blocks), starts
``nginx -p tmp -c tmp/nginx.conf -e tmp/error.log -g 'daemon off;'``, waits until
every port in ``ports`` accepts and returns an ``Nginx`` whose ``stop()`` kills
the master and its workers by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from support import kill_tree, remember_descendants

__all__ = ["NGINX", "Nginx", "nginx_binary", "start_nginx"]

NGINX = "/usr/sbin/nginx"
PARAMS_DIR = Path("/etc/nginx")

# nginx's stock parameter files (as shipped with it); used when the system has none
STOCK_UWSGI_PARAMS = """
uwsgi_param  QUERY_STRING       $query_string;
uwsgi_param  REQUEST_METHOD     $request_method;
uwsgi_param  CONTENT_TYPE       $content_type;
uwsgi_param  CONTENT_LENGTH     $content_length;
uwsgi_param  REQUEST_URI        $request_uri;
uwsgi_param  PATH_INFO          $document_uri;
uwsgi_param  DOCUMENT_ROOT      $document_root;
uwsgi_param  SERVER_PROTOCOL    $server_protocol;
uwsgi_param  REQUEST_SCHEME     $scheme;
uwsgi_param  HTTPS              $https if_not_empty;
uwsgi_param  REMOTE_ADDR        $remote_addr;
uwsgi_param  REMOTE_PORT        $remote_port;
uwsgi_param  SERVER_PORT        $server_port;
uwsgi_param  SERVER_NAME        $server_name;
"""

STOCK_FASTCGI_PARAMS = """
fastcgi_param  QUERY_STRING       $query_string;
fastcgi_param  REQUEST_METHOD     $request_method;
fastcgi_param  CONTENT_TYPE       $content_type;
fastcgi_param  CONTENT_LENGTH     $content_length;
fastcgi_param  SCRIPT_NAME        $fastcgi_script_name;
fastcgi_param  REQUEST_URI        $request_uri;
fastcgi_param  DOCUMENT_URI       $document_uri;
fastcgi_param  DOCUMENT_ROOT      $document_root;
fastcgi_param  SERVER_PROTOCOL    $server_protocol;
fastcgi_param  REQUEST_SCHEME     $scheme;
fastcgi_param  HTTPS              $https if_not_empty;
fastcgi_param  GATEWAY_INTERFACE  CGI/1.1;
fastcgi_param  SERVER_SOFTWARE    nginx/$nginx_version;
fastcgi_param  REMOTE_ADDR        $remote_addr;
fastcgi_param  REMOTE_PORT        $remote_port;
fastcgi_param  REMOTE_USER        $remote_user;
fastcgi_param  SERVER_ADDR        $server_addr;
fastcgi_param  SERVER_PORT        $server_port;
fastcgi_param  SERVER_NAME        $server_name;
fastcgi_param  REDIRECT_STATUS    200;
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None when the machine has none."""
    if os.access(NGINX, os.X_OK):
        return NGINX
    return shutil.which("nginx")


def _params_file(tmp: Path, name: str, stock: str) -> str:
    """The system's ``uwsgi_params``/``fastcgi_params`` (what a real site
    includes), else a copy of nginx's stock file written into ``tmp``."""
    system = PARAMS_DIR / name
    if system.is_file():
        return str(system)
    path = tmp / name
    path.write_text(stock)
    return str(path)


def _user_line() -> str:
    # nginx switches its workers to 'nobody' when started as root: stay who we are
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


def render_conf(tmp: Path, http_body: str) -> str:
    """The whole nginx.conf: every path nginx writes is inside ``tmp``."""
    temp = {
        name: tmp / f"{name}_temp" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return f"""
{_user_line()}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    access_log {tmp}/access.log;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    default_type application/octet-stream;

{http_body}
}}
"""


class Nginx:
    """A running nginx master; ``stop()`` kills it and its workers by PID."""

    def __init__(self, tmp: Path, proc: subprocess.Popen, log_file) -> None:
        self.tmp = tmp
        self.proc = proc
        self.pid = proc.pid
        self._log_file = log_file
        self._known: set[int] = {proc.pid}

    @property
    def error_log(self) -> str:
        try:
            return (self.tmp / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def output(self) -> str:
        return (self.tmp / "nginx.out").read_text(errors="replace")

    def stop(self) -> None:
        kill_tree(self.proc, self._known, grace=5)  # SIGTERM: nginx's fast shutdown
        self._log_file.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_nginx(
    tmp: Path,
    http_body: str,
    ports: list[int],
    timeout: float = 15.0,
) -> Nginx:
    """Write ``tmp/nginx.conf`` around ``http_body``, run nginx in the foreground,
    wait until every port accepts. ``{uwsgi_params}`` and ``{fastcgi_params}`` in
    ``http_body`` are replaced by the paths of the parameter files to include."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    http_body = http_body.replace(
        "{uwsgi_params}", _params_file(tmp, "uwsgi_params", STOCK_UWSGI_PARAMS)
    ).replace("{fastcgi_params}", _params_file(tmp, "fastcgi_params", STOCK_FASTCGI_PARAMS))
    conf = tmp / "nginx.conf"
    conf.write_text(render_conf(tmp, http_body))
    log_file = open(tmp / "nginx.out", "ab")
    proc = subprocess.Popen(
        [
            binary,
            "-p",
            str(tmp),
            "-c",
            str(conf),
            "-e",
            str(tmp / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Nginx(tmp, proc, log_file)
    deadline = time.monotonic() + timeout
    try:
        pending = list(ports)
        while pending:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {proc.returncode}:\n{server.output}\n{server.error_log}"
                )
            if _accepts(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx did not accept on {pending} within {timeout}s:\n{server.error_log}"
                )
            time.sleep(0.02)
        remember_descendants(server.pid, server._known)
    except BaseException:
        server.stop()
        raise
    return server
