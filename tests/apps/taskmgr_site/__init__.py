"""A Django site set up as django-uwsgi-taskmanager's README says (INSTALLED_APPS,
migrate, collectcommands, a ``spooler`` directory in the INI), with one command of
its own (``taskmgr_demo``'s ``greet``) to run as a task."""
