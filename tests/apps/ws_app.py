"""WebSocket test app on uWSGI's API (runs unchanged under uWSGI 2.0 and procmaster).

/echo        echo every message; b"binary:" prefix answers with websocket_send_binary;
             b"close" ends the app (the server closes); b"pid" answers the worker's pid
/nb          websocket_recv_nb: answers b"empty" when nothing waited, then the message
/noshake     calls websocket_recv without a handshake: the IOError is answered as a 500 text
/refuse      a plain response to an upgrade request (no handshake)
/shake2      handshake with an explicit key, origin and subprotocol, then echo
/stuck       handshake, then never reads (a client that floods it fills its buffers)
/flood       handshake, then sends 64 KiB messages until the send fails
/errors      records what websocket_recv raised when the client went away
/raise       echoes one message, then raises
/nothreads   (plain request) from now on no "websocket" thread can start, as when
             memory or a limit runs out; /threads undoes it
/            plain HTTP: "ok"
"""

import os
import threading
import time

import uwsgi

EVENTS = os.environ.get("WS_EVENTS")


def record(line):
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(line + "\n")


def echo():
    while True:
        msg = uwsgi.websocket_recv()
        if msg == b"close":
            return
        if msg == b"pid":
            uwsgi.websocket_send(str(os.getpid()).encode())
        elif msg.startswith(b"binary:"):
            uwsgi.websocket_send_binary(msg[7:])
        else:
            uwsgi.websocket_send(msg)


def application(env, start_response):
    path = env.get("PATH_INFO", "/")
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    if path in ("/nothreads", "/threads"):
        if path == "/nothreads":

            def start(self, _start=threading.Thread.start):
                if self.name == "websocket":
                    raise RuntimeError("can't start new thread")
                _start(self)

            threading.Thread._saved_start = threading.Thread.start
            threading.Thread.start = start
        elif hasattr(threading.Thread, "_saved_start"):
            threading.Thread.start = threading.Thread._saved_start
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    if path == "/refuse":
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"no websockets here"]
    if path == "/noshake":
        try:
            uwsgi.websocket_recv()
        except OSError as exc:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"{type(exc).__name__}: {exc}".encode()]
        start_response("200 OK", [])
        return [b"no error"]
    try:
        if path == "/shake2":
            uwsgi.websocket_handshake(
                env["HTTP_SEC_WEBSOCKET_KEY"], env.get("HTTP_ORIGIN", "http://o"), "chat"
            )
        else:
            uwsgi.websocket_handshake()
    except OSError as exc:
        record(f"handshake {exc}")
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [f"handshake failed: {exc}".encode()]
    if path in ("/echo", "/shake2"):
        try:
            echo()
        except OSError as exc:
            record(f"echo {exc}")
    elif path == "/nb":
        first = uwsgi.websocket_recv_nb()
        uwsgi.websocket_send(b"empty" if first == b"" else b"nonempty")
        while True:
            msg = uwsgi.websocket_recv_nb()
            if msg:
                uwsgi.websocket_send(b"nb:" + msg)
                break
            time.sleep(0.01)
    elif path == "/raise":
        uwsgi.websocket_send(uwsgi.websocket_recv())
        raise ValueError("the app failed after the handshake")
    elif path == "/stuck":
        time.sleep(3600)
    elif path == "/flood":
        sent = 0
        try:
            while True:
                uwsgi.websocket_send_binary(b"x" * 65536)
                sent += 1
        except OSError as exc:
            record(f"flood stopped after {sent}: {exc}")
    elif path == "/errors":
        try:
            while True:
                uwsgi.websocket_recv()
        except OSError as exc:
            record(f"recv {exc}")
    return []
