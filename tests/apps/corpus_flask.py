"""A small Flask site for the INI corpus tests (tests/data/ini-corpus)."""

from flask import Flask, request

app = Flask(__name__)
application = app


@app.route("/")
def index():
    return "flask ok\n"


@app.route("/hello")
def hello():
    return f"hello from {request.script_root or '/'}\n"
