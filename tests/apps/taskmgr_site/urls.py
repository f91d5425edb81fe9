"""The taskmanager's own URLs plus two views a test drives: launch a task (what the
admin's "launch" action does: ``Task.launch()``) and read a task's state and reports."""

import datetime

from django.db import transaction
from django.http import JsonResponse
from django.urls import include, path
from taskmanager.models import AppCommand, Task


def launch(request):
    command = AppCommand.objects.get(name=request.GET["command"])
    task = Task.objects.create(
        name=request.GET["name"],
        command=command,
        arguments=request.GET.get("arguments", ""),
        repetition_period=request.GET.get("period", ""),
        repetition_rate=int(request.GET["rate"]) if request.GET.get("rate") else None,
        scheduling=(
            datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=int(request.GET["in"]))
            if "in" in request.GET
            else None
        ),
    )
    task.launch()
    task.refresh_from_db()
    return JsonResponse({"id": task.id, "status": task.status, "spooler_id": task.spooler_id})


def state(request):
    # one read transaction: the task's status and its reports as of one moment
    # (two reads apart could pair a status from before the spooler's run with the
    # report that run created)
    with transaction.atomic():
        task = Task.objects.get(pk=int(request.GET["id"]))
        reports = [
            {"result": r.invocation_result, "log": r.log, "lines": r.n_log_lines}
            for r in task.report_set.order_by("id")
        ]
    return JsonResponse(
        {
            "status": task.status,
            "spooler_id": task.spooler_id,
            "next_ride": str(task.cached_next_ride),
            "reports": reports,
        }
    )


def stop(request):
    task = Task.objects.get(pk=int(request.GET["id"]))
    task.stop()
    return JsonResponse({"status": task.status})


urlpatterns = [
    path("launch", launch),
    path("state", state),
    path("stop", stop),
    path("", lambda request: JsonResponse({"ok": True})),
    path("taskmanager/", include("taskmanager.urls")),
]
