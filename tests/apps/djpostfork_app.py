"""A Django app that does what uWSGI's docs tell Django users to do: close the database
connections the master opened while importing the app, in ``@postfork``, so no worker
shares the master's connection; and say goodbye in ``@atexit``.

The master queries the database at import (as many apps do, through checks or
caches), so without the hook every worker would inherit that connection. Each
view answers 500 when its connection was opened in another process. Events (one
JSON line each: postfork, atexit) go to the file named by ``API_EVENTS``.
"""

import json
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["DJ_DB"],
            "OPTIONS": {"timeout": 30},
            "CONN_MAX_AGE": None,  # persistent: Django alone never closes the inherited one
        }
    },
)
django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from uwsgidecorators import atexit, postfork  # noqa: E402

EVENTS = os.environ["API_EVENTS"]
OPENED_BY: dict[int, int] = {}  # id(DB-API connection) -> pid that opened it


def event(kind):
    line = json.dumps({"kind": kind, "pid": os.getpid()}).encode() + b"\n"
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def opened(sender, connection, **kwargs):
    OPENED_BY[id(connection.connection)] = os.getpid()


connection_created.connect(opened)

with connection.cursor() as cur:  # the master's own connection, at import
    cur.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER)")


@postfork
def close_db_connections():
    connections.close_all()  # uWSGI's advice for Django: never share the master's
    event("postfork")


@atexit
def goodbye():
    event("atexit")


def view(request):
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM hits")
        cur.fetchone()
    if OPENED_BY.get(id(connection.connection)) != os.getpid():
        return HttpResponse("the master's connection, shared", status=500)
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [path("", view)]
application = WSGIHandler()
