"""Internal routing (uWSGI's ``route``, ``route-if``, ``route-run`` ...) and the
per-response options that ride with it (``add-header``).

The parts::

    rules.py   the rule lines read at start: subjects, conditions, templates ($1, ${VAR}),
               compiled once into a tuple (pure; the master checks them before forking)
    auth.py    basicauth: a user:password pair or an htpasswd file
    front.py   the worker's front door: rules, then static files, then the app,
               with the response headers the rules and add-header ask for

This ``__init__`` imports nothing, so that the master can check the rules
(``routing.rules``) without reaching the static files or WSGI.

Must not know: sockets, protocols, workers.
"""
