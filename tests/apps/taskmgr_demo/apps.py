"""A Django app holding one command for the taskmanager to run."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "taskmgr_demo"
