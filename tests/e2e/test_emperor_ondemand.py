"""emperor-on-demand-directory with real processes: no vassal runs until the first
connection on its socket, and that very first request is answered by the vassal
started for it (HTTP with the vassal's own socket option naming the same path,
the uwsgi protocol without one); after the vassal exits the Emperor waits again."""

from __future__ import annotations

import signal
import socket
import struct
import time

import psutil
from support import raw_request, wait_for
from test_emperor import emperor  # noqa: F401  (the fixture)


def _uwsgi_packet(env: dict[str, str]) -> bytes:
    body = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
        for k, v in env.items()
    )
    return struct.pack("<BHB", 0, len(body), 0) + body


def _recv_all(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_vassal_starts_on_first_connection_and_answers_it(emperor, tmp_path):  # noqa: F811
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    web = sockets / "web.socket"
    (vassals / "web.ini").write_text(
        f"[uwsgi]\nhttp-socket = {web}\nmodule = testapp\nprocesses = 1\n"
    )
    (vassals / "plain.ini").write_text("[uwsgi]\nmodule = testapp\nprocesses = 1\n")
    emp = emperor("--emperor", vassals, "--emperor-on-demand-directory", sockets)
    emp.wait_log("vassal web.ini: on demand: waiting for connections")
    emp.wait_log("vassal plain.ini: on demand: waiting for connections")
    time.sleep(0.5)  # nothing may start on its own meanwhile
    assert emp.descendants() == [] and "started (pid" not in emp.log

    # the very first request, over HTTP, is answered by the vassal it woke
    reply = raw_request(0, b"GET / HTTP/1.0\r\n\r\n", timeout=30, unix=str(web))
    assert reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200"), reply
    assert reply.endswith(b"Hello, World!")
    master = emp.master_pid("web.ini")
    assert psutil.Process(master).is_running()
    assert "vassal plain.ini: started" not in emp.log  # the other one still waits

    # no socket option: the vassal serves fd 0 with the uwsgi protocol
    reply = _recv_all(
        str(sockets / "plain.socket"),
        _uwsgi_packet(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "REQUEST_URI": "/",
                "QUERY_STRING": "",
                "SERVER_NAME": "x",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.0",
            }
        ),
    )
    assert b" 200 " in reply.split(b"\r\n", 1)[0] and reply.endswith(b"Hello, World!"), reply

    # the vassal goes (killed here): the Emperor waits for the next connection
    psutil.Process(master).kill()
    emp.wait_log("vassal web.ini: on demand: waiting for connections", count=2, timeout=30)
    reply = raw_request(0, b"GET / HTTP/1.0\r\n\r\n", timeout=30, unix=str(web))
    assert reply.endswith(b"Hello, World!")
    wait_for(lambda: emp.log.count("vassal web.ini: started") == 2, what=emp.log)

    # the Emperor stops: its on-demand sockets are closed and removed
    emp.proc.send_signal(signal.SIGTERM)
    assert emp.proc.wait(timeout=60) == 0
    assert not web.exists() and not (sockets / "plain.socket").exists()
