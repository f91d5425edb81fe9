"""A small Flask site for ``configs/flask.ini``."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask!\n"


@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data()


@app.route("/json")
def as_json():
    return jsonify(path=request.path, args=request.args, script_root=request.script_root)
