"""An app whose import fails in every worker except the first to import it
(the first creates the file named by IMPORT_OK_FLAG): the crash-loop test."""

import os

flag = os.environ["IMPORT_OK_FLAG"]
try:
    os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    raise RuntimeError("this worker cannot start (import_error_app)") from None


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
