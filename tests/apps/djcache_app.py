"""A Django app whose cache is uWSGI's, through the django-uwsgi-cache package,
set up as that package documents (CACHES -> uwsgicache.UWSGICache, LOCATION = the
cache2 name). Under uWSGI or procmaster it shares one cache between workers;
anywhere else the package falls back to a per-process LocMemCache."""

import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    CACHES={"default": {"BACKEND": "uwsgicache.UWSGICache", "LOCATION": "mycache"}},
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def put(request):
    cache.set(request.GET["key"], {"value": request.GET["value"], "by": os.getpid()})
    return JsonResponse({"ok": True})


def get(request):
    return JsonResponse(
        {
            "value": cache.get(request.GET["key"]),
            "pid": os.getpid(),
            "backend": type(cache._cache).__name__
            if hasattr(cache, "_cache")
            else type(cache).__name__,
        }
    )


def add(request):
    return JsonResponse({"added": cache.add(request.GET["key"], 1)})


def delete(request):
    cache.delete(request.GET["key"])
    return JsonResponse({"ok": True})


urlpatterns = [path("put", put), path("get", get), path("add", add), path("delete", delete)]
application = WSGIHandler()
