"""A plain Django command, run by the taskmanager in the spooler."""

import os

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Say hello (from the process that runs it)"

    def add_arguments(self, parser):
        parser.add_argument("who")

    def handle(self, *args, **options):
        import uwsgi  # only there when a server runs the command

        self.stdout.write(f"hello {options['who']} from pid {os.getpid()}")
        self.stdout.write(f"in the spooler: {bool(uwsgi.i_am_the_spooler())}")
