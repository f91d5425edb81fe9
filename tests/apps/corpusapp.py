"""The app of the HTTP conformance corpus run end to end: answers every request
with a JSON object of its CGI variables (str values) and its body (latin-1)."""

import json


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    data = {k: v for k, v in environ.items() if isinstance(v, str)}
    data["body"] = body.decode("latin-1")
    out = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]
