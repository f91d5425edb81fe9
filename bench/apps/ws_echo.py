"""WebSocket echo on uWSGI's API (the same file under uWSGI and procmaster)."""

import uwsgi


def application(env, start_response):
    if env.get("PATH_INFO") != "/ws":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    uwsgi.websocket_handshake()
    try:
        while True:
            uwsgi.websocket_send_binary(uwsgi.websocket_recv())
    except OSError:
        return []
