"""The soak's Flask app (``bench/faults.py soak``): small pages, JSON, a
streamed response, multipart uploads (large ones are spooled to disk)."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
application = app


@app.get("/")
def index():
    return "Hello, World!"


@app.get("/json")
def as_json():
    return jsonify(items=list(range(50)), path=request.path, args=dict(request.args))


@app.get("/stream")
def stream():
    def chunks():
        for i in range(64):
            yield b"%04d" % i + b"." * 1020

    return Response(chunks(), mimetype="application/octet-stream")


@app.post("/upload")
def upload():
    f = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while chunk := f.stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(size=size, sha256=digest.hexdigest(), name=f.filename)
