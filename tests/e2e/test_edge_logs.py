"""Logging where operators look: rsyslog (Debian's daemon, run here with its own
config on a 127.0.0.1 UDP port and a unix socket in a tmp dir, killed by PID)
receiving procmaster's lines and request lines; JSON request lines that stay one
valid object per line whatever the headers hold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess

import pytest
from support import free_port, raw_request, wait_for

RSYSLOGD = shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
)


@pytest.fixture
def rsyslogd(tmp_path):
    """A private rsyslogd: UDP on 127.0.0.1:PORT and a unix socket, to out.log."""
    if RSYSLOGD is None:
        pytest.skip("rsyslogd is not installed (Debian's rsyslog package; .ci/run installs it)")
    port = free_port()
    sock_path = tmp_path / "syslog.sock"
    out = tmp_path / "out.log"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{tmp_path}")\n'
        'module(load="imudp")\n'
        'module(load="imuxsock" SysSock.Use="off")\n'
        f'input(type="imudp" address="127.0.0.1" port="{port}")\n'
        f'input(type="imuxsock" Socket="{sock_path}")\n'
        # facility, severity, tag and message as rsyslog parsed them
        'template(name="parsed" type="string" '
        'string="%syslogfacility-text%.%syslogseverity-text% [%programname%] %msg%\\n")\n'
        f'*.* action(type="omfile" file="{out}" template="parsed")\n'
    )
    proc = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ready() -> bool:
        assert proc.poll() is None, "rsyslogd exited"
        return sock_path.exists()

    wait_for(ready, 15, what="rsyslogd's socket")
    try:
        yield port, str(sock_path), out
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_rsyslog_receives_master_and_request_lines(procmaster, tmp_path, rsyslogd):
    udp_port, sock_path, out = rsyslogd
    port = free_port()
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\n"
        f"http-socket = 127.0.0.1:{port}\nmodule = testapp\nprocesses = 2\nmaster = true\n"
        # local0.info (134) under the tag "web", as uWSGI's rsyslog:HOST:PORT,TAG,PRI
        f"logger = rsyslog:127.0.0.1:{udp_port},web,134\n"
        f"req-logger = rsyslog:{sock_path},reqs\n"
        "log-format = %(method) %(uri) => %(status)\n"
    )
    server = procmaster("--ini", ini, wait_port=port)
    raw_request(port, b"GET /echo?syslog-me HTTP/1.0\r\n\r\n")

    def seen() -> bool:
        text = out.read_text() if out.exists() else ""
        return "procmaster master pid" in text and "GET /echo?syslog-me => 200" in text

    wait_for(seen, 20, what=f"lines in rsyslog's file:\n{out.read_text() if out.exists() else ''}")
    text = out.read_text()
    master_line = next(line for line in text.splitlines() if "procmaster master pid" in line)
    assert master_line.startswith("local0.info [web] "), master_line
    req_line = next(line for line in text.splitlines() if "syslog-me" in line)
    # PRI 29 = daemon.notice, uWSGI's default
    # rsyslog keeps the space after "TAG:" in %msg%
    assert req_line == "daemon.notice [reqs]  GET /echo?syslog-me => 200", req_line
    # request lines went to the request logger only
    assert "syslog-me" not in master_line and text.count("syslog-me") == 1
    assert "syslog-me" not in server.log


def _uwsgi_packet(env: dict[bytes, bytes]) -> bytes:
    body = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in env.items()
    )
    return struct.pack("<BHB", 0, len(body), 0) + body


def test_json_request_lines_survive_hostile_headers(procmaster, tmp_path):
    port, uport = free_port(), free_port()
    logfile = tmp_path / "req.json"
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\n"
        f"http-socket = 127.0.0.1:{port}\nuwsgi-socket = 127.0.0.1:{uport}\n"
        "module = testapp\nprocesses = 1\nmaster = true\n"
        f"req-logger = file:{logfile}\n"
        "log-format = %(method) %(uri) %(status) ua=%(uagent) p=%(var.PATH_INFO)\n"
        'log-req-encoder = json {"time":${unix},"line":"${msg}"}\n'
        "log-req-encoder = nl\n"
    )
    procmaster("--ini", ini, wait_port=port)
    agents = [b'quote " backslash \\ brace } tab\tin', b"latin \xff\xfe bytes", b'{"a": "json"}']
    for agent in agents:
        raw_request(port, b"GET /echo HTTP/1.0\r\nUser-Agent: " + agent + b"\r\n\r\n")
    # a decoded PATH_INFO carries a newline, a quote and a non-UTF-8 byte into the line
    raw_request(port, b"GET /path/a%0Ab%22c%FF%0D HTTP/1.0\r\n\r\n")
    # the uwsgi protocol carries control characters and bytes that are not UTF-8
    with socket.create_connection(("127.0.0.1", uport), timeout=10) as s:
        s.sendall(
            _uwsgi_packet(
                {
                    b"REQUEST_METHOD": b"GET",
                    b"REQUEST_URI": b"/echo",
                    b"PATH_INFO": b"/echo",
                    b"SERVER_PROTOCOL": b"HTTP/1.0",
                    b"HTTP_USER_AGENT": b'\x01\x1b[31m \xc3\x28 "bad utf-8" \\u0000',
                }
            )
        )
        while s.recv(65536):
            pass

    def lines() -> list[str]:
        if not logfile.exists():
            return []
        text = logfile.read_bytes().decode("utf-8")  # valid UTF-8 throughout
        return [line for line in text.splitlines() if "GET / " not in line]

    wait_for(lambda: len(lines()) >= 5, 15, what=f"5 request lines in {logfile}")
    objects = [json.loads(line) for line in lines()]  # each line one valid object
    assert all(set(o) == {"time", "line"} and isinstance(o["time"], int) for o in objects)
    got = [o["line"] for o in objects]
    assert got[0] == 'GET /echo 200 ua=quote " backslash \\ brace } tab\tin p=/echo'
    assert got[1] == "GET /echo 200 ua=latin \xff\xfe bytes p=/echo"
    assert got[2] == 'GET /echo 200 ua={"a": "json"} p=/echo'
    assert got[3] == 'GET /path/a%0Ab%22c%FF%0D 200 ua= p=/path/a\nb"c\xff\r'
    assert got[4] == 'GET /echo 200 ua=\x01\x1b[31m \xc3( "bad utf-8" \\u0000 p=/echo'
