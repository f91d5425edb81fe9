"""procmaster: run WSGI applications from uWSGI-style INI files.

The parts (see ``docs/`` and the design notes): ``options`` and ``config`` read
what to run; ``master`` forks and supervises ``worker`` processes; a worker
speaks a wire protocol from ``protocols`` and calls the app through ``wsgi``.
"""

__version__ = "0.1.0"
