"""Views of the test Django project."""

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def index(request):
    return HttpResponse("Hello from Django!\n", content_type="text/plain")


@csrf_exempt
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


def info(request):
    return JsonResponse(
        {
            "path": request.path,
            "script_name": request.META["SCRIPT_NAME"],
            "query": request.GET.dict(),
            "host": request.get_host(),
            "secure": request.is_secure(),
        }
    )


def stream(request):
    return StreamingHttpResponse((f"part {i}\n" for i in range(3)), content_type="text/plain")


urlpatterns = [path("", index), path("echo", echo), path("info", info), path("stream", stream)]
