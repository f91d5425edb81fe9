"""Listening sockets end to end: abstract unix names, socket permissions,
vacuum, the listen backlog, start-up errors that name the config line, IPv6,
and sockets handed over by systemd (``LISTEN_FDS``/``LISTEN_PID``), with a
wrapper that does what systemd does and with ``systemd-socket-activate``.
Real procmaster processes; each is killed by PID at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support import APPS, ROOT, Server, free_port, http_get, raw_request, wait_for

MASTER_UP = "procmaster master pid"
STARTUP = 30.0  # seconds a start or stop may take on a loaded machine (well under 1 here)
GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def app_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("NOTIFY_SOCKET", None)
    for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(key, None)
    return env


def write_ini(path: Path, *lines: str) -> Path:
    path.write_text("[uwsgi]\n" + "".join(line + "\n" for line in lines))
    return path


def connects(address) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family)
    s.settimeout(1)
    try:
        s.connect(address)
        return True
    except OSError:
        return False
    finally:
        s.close()


def uwsgi_get(address) -> bytes:
    """A uwsgi request for / (what nginx's uwsgi_pass sends); the raw answer."""
    pairs = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
    }
    data = b""
    for k, v in pairs.items():
        data += struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
    return talk(address, struct.pack("<BHB", 0, len(data), 0) + data)


def talk(address, data: bytes, timeout: float = 10.0) -> bytes:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family)
    s.settimeout(timeout)
    try:
        s.connect(address)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def hello(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"Hello, World!")


class Launched(Server):
    """A process started with any command (a wrapper that execs procmaster),
    with file descriptors passed; killed by PID like the fixture's servers."""

    def __init__(self, cmd, cwd: Path, env: dict, log_path: Path, pass_fds=()) -> None:
        self.args = list(cmd)
        self.cwd = cwd
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )
        self.pid = self.proc.pid
        self._known = {self.pid}


@pytest.fixture
def launch(tmp_path):
    started: list[Launched] = []

    def start(cmd, env=None, pass_fds=()) -> Launched:
        server = Launched(
            cmd,
            tmp_path,
            env or app_env(),
            tmp_path / f"launched-{len(started)}.log",
            pass_fds,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill_all()


def run_procmaster(*args, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "procmaster", *map(str, args)],
        cwd=cwd,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- abstract unix sockets ---------------------------------------------------------


def test_abstract_unix_sockets_serve_http_and_uwsgi(procmaster, tmp_path):
    tag = uuid.uuid4().hex[:12]
    http_name, uwsgi_name = f"@procmaster-http-{tag}", f"@procmaster-uwsgi-{tag}"
    server = procmaster(
        "--http-socket",
        http_name,
        "--socket",
        uwsgi_name,
        "--module",
        "testapp",
        "--master",
        wait_log=MASTER_UP,
    )
    http_addr, uwsgi_addr = "\0" + http_name[1:], "\0" + uwsgi_name[1:]
    wait_for(lambda: connects(http_addr), STARTUP, what=f"{http_name}:\n{server.log}")
    assert hello(raw_request(0, GET, unix=http_addr))
    assert hello(uwsgi_get(uwsgi_addr))
    # abstract: in the kernel's table, not in the file system
    with open("/proc/net/unix") as fh:
        table = fh.read()
    assert http_name in table and uwsgi_name in table
    assert not [p for p in os.listdir(tmp_path) if p.startswith("@") or tag in p]


# -- chmod-socket ----------------------------------------------------------------------


def test_chmod_socket_bare_is_666(procmaster, tmp_path):
    path = str(tmp_path / "bare.sock")
    procmaster(
        "--http-socket", path, "--chmod-socket", "--module", "testapp", "--master", wait_unix=path
    )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    assert hello(raw_request(0, GET, unix=path))


def test_chmod_socket_octal_from_ini(procmaster, tmp_path):
    path = str(tmp_path / "octal.sock")
    uwsgi_path = str(tmp_path / "octal-uwsgi.sock")
    ini = write_ini(
        tmp_path / "chmod.ini",
        "master = true",
        "module = testapp",
        f"http-socket = {path}",
        f"socket = {uwsgi_path}",
        "chmod-socket = 660",
    )
    procmaster("--ini", ini, wait_unix=path)
    wait_for(lambda: connects(uwsgi_path), STARTUP, what=uwsgi_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(uwsgi_path).st_mode) == 0o660
    assert hello(raw_request(0, GET, unix=path))
    assert hello(uwsgi_get(uwsgi_path))


# -- vacuum ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vacuum,sig",
    [(True, signal.SIGINT), (True, signal.SIGTERM), (False, signal.SIGINT)],
    ids=["vacuum-SIGINT", "vacuum-SIGTERM", "no-vacuum"],
)
def test_vacuum_removes_unix_sockets_on_exit(procmaster, tmp_path, vacuum, sig):
    http_path = str(tmp_path / "v-http.sock")
    uwsgi_path = str(tmp_path / "v-uwsgi.sock")
    pidfile = tmp_path / "v.pid"
    lines = [
        "master = true",
        "module = testapp",
        f"http-socket = {http_path}",
        f"socket = {uwsgi_path}",
        f"pidfile = {pidfile}",
    ]
    if vacuum:
        lines.append("vacuum = true")
    server = procmaster("--ini", write_ini(tmp_path / "v.ini", *lines), wait_unix=http_path)
    assert hello(raw_request(0, GET, unix=http_path))
    assert os.path.exists(uwsgi_path) and pidfile.exists()
    server.signal(sig)
    assert server.wait_exit(STARTUP) == 0, server.log
    left = [p for p in (http_path, uwsgi_path, str(pidfile)) if os.path.exists(p)]
    if vacuum:
        assert left == [], f"vacuum left {left}:\n{server.log}"
    else:
        # without vacuum the socket files stay (as uWSGI); the next start clears them
        assert http_path in left and uwsgi_path in left
        again = procmaster("--ini", tmp_path / "v.ini", wait_unix=http_path)
        assert hello(raw_request(0, GET, unix=http_path)), again.log


# -- listen backlog ----------------------------------------------------------------------


def test_listen_backlog_is_applied(procmaster):
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed: cannot read a socket's backlog")
    port = free_port()
    procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--listen",
        "77",
        "--module",
        "testapp",
        "--master",
        wait_port=port,
    )
    assert http_get(port, "/")[2] == b"Hello, World!"
    out = subprocess.run(
        ["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    # a listening socket's Send-Q is its backlog
    backlogs = {line.split()[2] for line in out.splitlines() if line.strip()}
    assert backlogs == {"77"}, out


# -- start-up errors -----------------------------------------------------------------------


@pytest.mark.parametrize("option", ["http-socket", "socket", "fastcgi-socket"])
def test_socket_in_missing_directory_is_a_clear_error(tmp_path, option):
    missing = tmp_path / "no" / "such" / "dir"
    ini = write_ini(
        tmp_path / "missing.ini",
        "master = true",
        "module = testapp",
        f"{option} = {missing}/app.sock",
    )
    result = run_procmaster("--ini", ini, cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert f"{ini}:4" in out, out  # the config line
    assert f"option '{option}'" in out and "does not exist" in out and str(missing) in out, out
    assert "Traceback" not in out, out


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_address_in_use_is_a_clear_error(tmp_path, kind):
    """Another server listens where the config's third socket goes: exit with
    the config line; the sockets bound before it are closed and their files
    removed (a failed start leaves nothing behind)."""
    first_unix = tmp_path / "first.sock"
    with socket.socket(socket.AF_INET if kind == "tcp" else socket.AF_UNIX) as holder:
        if kind == "tcp":
            holder.bind(("127.0.0.1", 0))
            busy = f"127.0.0.1:{holder.getsockname()[1]}"
        else:
            busy = str(tmp_path / "busy.sock")
            holder.bind(busy)
        holder.listen()
        good = free_port()
        ini = write_ini(
            tmp_path / "busy.ini",
            "master = true",
            "module = testapp",
            f"http-socket = 127.0.0.1:{good}",
            f"http-socket = {first_unix}",
            f"socket = {busy}",
        )
        result = run_procmaster("--ini", ini, cwd=tmp_path)
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert f"{ini}:6" in out and "option 'socket'" in out, out
        assert f"cannot bind {busy}" in out and "address already in use" in out, out
        assert "Traceback" not in out, out
        # the other server's socket is untouched
        if kind == "unix":
            assert connects(busy)
    assert not connects(("127.0.0.1", good))
    assert not first_unix.exists(), "a failed start left its unix socket file behind"


# -- IPv6 --------------------------------------------------------------------------------------


def _has_ipv6_loopback() -> str | None:
    """None when [::1] can be bound, else why not."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"this machine has no ::1 ({exc.strerror})"
    return None


def test_ipv6_loopback(procmaster):
    why = _has_ipv6_loopback()
    if why:
        print(f"skipping IPv6: {why}")
        pytest.skip(why)
    port = free_port()
    server = procmaster(
        "--http-socket", f"[::1]:{port}", "--module", "testapp", "--master", wait_log=MASTER_UP
    )

    def up():
        try:
            return http_get(port, "/env", host="::1", timeout=2)
        except OSError:
            return None

    status, _, body = wait_for(up, STARTUP, what=f"[::1]:{port}:\n{server.log}")
    assert status == 200
    assert '"REMOTE_ADDR": "::1"' in body.decode()
    # IPv6 only: nothing on the IPv4 loopback
    assert not connects(("127.0.0.1", port))


# -- systemd socket activation ------------------------------------------------------------------

# what systemd does before exec: the socket at fd 3, LISTEN_FDS and LISTEN_PID (its own pid,
# which exec keeps); argv[1] is the fd to pass, argv[2] the LISTEN_PID to set ("self",
# another pid, or "unset")
ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_FDS"] = "1"
if sys.argv[2] != "unset":
    os.environ["LISTEN_PID"] = str(os.getpid()) if sys.argv[2] == "self" else sys.argv[2]
os.execv(sys.executable, [sys.executable, "-m", "procmaster", *sys.argv[3:]])
"""


def listening_socket(kind: str, tmp_path: Path):
    """(socket, address for the config, address to connect to)."""
    if kind == "abstract":
        name = f"procmaster-activated-{uuid.uuid4().hex[:12]}"
        s = socket.socket(socket.AF_UNIX)
        s.bind("\0" + name)
        s.listen(16)
        return s, "@" + name, "\0" + name
    if kind == "tcp":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        return s, f"127.0.0.1:{port}", ("127.0.0.1", port)
    path = str(tmp_path / "activated.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    return s, path, path


def activate(launch, sock: socket.socket, ini: Path, listen_pid: str = "self"):
    fd = sock.fileno()
    return launch(
        [sys.executable, "-c", ACTIVATE, str(fd), listen_pid, "--ini", str(ini)],
        pass_fds=(fd,),
    )


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_socket_activation_matched_to_the_configured_address(launch, tmp_path, kind):
    sock, address, target = listening_socket(kind, tmp_path)
    ini = write_ini(
        tmp_path / "activated.ini",
        "master = true",
        "module = testapp",
        f"http-socket = {address}",
        "vacuum = true",
    )
    try:
        server = activate(launch, sock, ini)
        server.wait_log(MASTER_UP, STARTUP)
    finally:
        sock.close()  # from now on only procmaster holds the socket
    assert f"http socket {address} inherited (fd 3" in server.log, server.log
    assert "bound" not in server.log, server.log
    for _ in range(3):
        assert hello(talk(target, GET))
    osenv = talk(target, GET.replace(b"GET / ", b"GET /osenv "))
    # LISTEN_* are for procmaster, not for the app (nor a later exec)
    assert b"LISTEN_FDS" not in osenv and b"LISTEN_PID" not in osenv
    if kind == "unix":
        # systemd's socket: vacuum must not remove it (systemd owns it)
        server.signal(signal.SIGINT)
        server.wait_exit(STARTUP)
        assert os.path.exists(address)


@pytest.mark.parametrize("kind", ["tcp", "abstract"])
def test_socket_activation_with_no_socket_in_the_config_serves_uwsgi(launch, tmp_path, kind):
    sock, address, target = listening_socket(kind, tmp_path)
    ini = write_ini(tmp_path / "nosocket.ini", "master = true", "module = testapp")
    try:
        server = activate(launch, sock, ini)
        server.wait_log(MASTER_UP, STARTUP)
    finally:
        sock.close()
    # the log names the socket as a config would
    assert f"uwsgi socket {address} inherited (fd 3" in server.log, server.log
    assert hello(uwsgi_get(target)), server.log
    assert hello(uwsgi_get(target))


def test_socket_activation_survives_a_reload_and_vacuum_spares_it(launch, tmp_path):
    """A full reload re-executes the master, which takes the sockets over from
    its previous image: systemd's socket stays systemd's (still "inherited",
    and vacuum does not remove its file when procmaster stops)."""
    sock, address, target = listening_socket("unix", tmp_path)
    ini = write_ini(
        tmp_path / "reload.ini",
        "master = true",
        "module = testapp",
        f"http-socket = {address}",
        "vacuum = true",
    )
    try:
        server = activate(launch, sock, ini)
        server.wait_log(MASTER_UP, STARTUP)
    finally:
        sock.close()
    assert hello(talk(target, GET))
    server.signal(signal.SIGHUP)
    server.wait_log("reload (SIGHUP) done", STARTUP)
    line = f"http socket {address} inherited (fd"
    assert server.log.count(line) == 2, server.log
    assert hello(talk(target, GET))
    server.signal(signal.SIGINT)
    server.wait_exit(STARTUP)
    assert os.path.exists(address), f"vacuum removed systemd's socket:\n{server.log}"


@pytest.mark.parametrize("listen_pid", ["1", "unset"])
def test_socket_activation_for_another_pid_is_ignored(launch, tmp_path, listen_pid):
    """LISTEN_PID names another process, or is missing (as sd_listen_fds(3)
    reads it): the fds are not ours; procmaster binds the configured address
    itself, which the test's socket holds: a clear error."""
    sock, address, _ = listening_socket("tcp", tmp_path)
    ini = write_ini(
        tmp_path / "other.ini", "master = true", "module = testapp", f"http-socket = {address}"
    )
    try:
        server = activate(launch, sock, ini, listen_pid=listen_pid)
        code = server.wait_exit(STARTUP)
    finally:
        sock.close()
    assert code != 0, server.log
    assert "address already in use" in server.log and f"{ini}:4" in server.log, server.log
    assert "Traceback" not in server.log


def test_systemd_socket_activate(launch, tmp_path):
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        print("skipping: systemd-socket-activate is not installed")
        pytest.skip("systemd-socket-activate is not installed on this machine")
    port = free_port()
    ini = write_ini(
        tmp_path / "ssa.ini",
        "master = true",
        "module = testapp",
        f"http-socket = 127.0.0.1:{port}",
    )
    pythonpath = os.pathsep.join([str(APPS), str(ROOT)])
    # it passes the children only the environment it is told to (-E)
    server = launch(
        [
            tool,
            "-l",
            f"127.0.0.1:{port}",
            "-E",
            f"PYTHONPATH={pythonpath}",
            sys.executable,
            "-m",
            "procmaster",
            "--ini",
            str(ini),
        ]
    )
    # it listens at once and execs procmaster on the first connection
    wait_for(
        lambda: server.proc.poll() is None and connects(("127.0.0.1", port)),
        STARTUP,
        what=f"systemd-socket-activate on {port}:\n{server.log}",
    )
    status, _, body = http_get(port, "/", timeout=30)
    assert (status, body) == (200, b"Hello, World!"), server.log
    log = server.wait_log(MASTER_UP, STARTUP)
    assert f"http socket 127.0.0.1:{port} inherited (fd 3" in log, log
    assert http_get(port, "/")[2] == b"Hello, World!"
