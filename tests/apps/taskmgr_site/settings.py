"""Settings: the database and media directory come from TASKMGR_DIR (a test's tmp)."""

import os

BASE = os.environ["TASKMGR_DIR"]
DEBUG = False
SECRET_KEY = "test-only"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "taskmgr_site.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "taskmanager",
    "taskmgr_demo",
]
MIDDLEWARE = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(BASE, "db.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
MEDIA_ROOT = os.path.join(BASE, "media")
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
UWSGI_TASKMANAGER_SAVE_LOGFILE = True
