"""The Flask row's app: a small JSON API.

``GET /`` answers ``{"count": N, "items": [...], "total": CENTS}`` built from an
in-memory list (what a JSON endpoint does after its query: dicts to JSON through
Flask's own ``jsonify``), every time the same bytes. ``GET /items/<id>`` answers
one item or a JSON 404.
"""

from flask import Flask, abort, jsonify

ITEMS = [{"id": n, "name": f"item {n}", "price": n * 125} for n in range(1, 11)]

app = Flask(__name__)
application = app


@app.get("/")
def index():
    return jsonify(count=len(ITEMS), items=ITEMS, total=sum(i["price"] for i in ITEMS))


@app.get("/items/<int:item_id>")
def item(item_id: int):
    if not 1 <= item_id <= len(ITEMS):
        abort(404)
    return jsonify(ITEMS[item_id - 1])


@app.errorhandler(404)
def not_found(error):
    return jsonify(error="not found"), 404
