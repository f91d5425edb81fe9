"""The Django row's app: one page rendered from a template with one SQLite query.

A whole Django project in one file: ``settings.configure`` with the usual
middleware, one model (``Item``), one view that reads the items with the ORM
(one ``SELECT``) and renders ``templates/items.html``. The database is the file
named by ``BENCH_DB`` (each server row is given one in its own temporary
directory), created and filled at import when it is empty, so every worker of
every server sees the same ten rows and the page is the same bytes each time.
``DEBUG`` is off, connections are closed after each request (Django's default).
"""

import os
import sqlite3
import tempfile

import django
from django.conf import settings

HERE = os.path.dirname(os.path.abspath(__file__))
DB = os.environ.get("BENCH_DB") or os.path.join(tempfile.gettempdir(), "bench-django.sqlite3")
ITEMS = [(n, f"item {n}", n * 125) for n in range(1, 11)]  # id, name, price in cents


def fill(path: str) -> None:
    """Create and fill the table once; concurrent workers agree (INSERT OR IGNORE)."""
    with sqlite3.connect(path, timeout=10) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS bench_item"
            " (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL)"
        )
        db.executemany("INSERT OR IGNORE INTO bench_item VALUES (?, ?, ?)", ITEMS)


fill(DB)
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes"],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}},
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [os.path.join(HERE, "templates")],
        }
    ],
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.db import models  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402


class Item(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField()

    class Meta:
        app_label = "bench"
        db_table = "bench_item"


def items(request):
    """The page: every item, one query."""
    return render(request, "items.html", {"items": list(Item.objects.order_by("id"))})


urlpatterns = [path("", items)]
application = get_wsgi_application()
