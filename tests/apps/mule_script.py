"""A mule script: reads the messages sent to its mule and records each."""

import json
import os

import uwsgi

while True:
    message = uwsgi.mule_get_msg()
    line = json.dumps(
        {"kind": "script", "pid": os.getpid(), "mule": uwsgi.mule_id(), "msg": message.decode()}
    )
    with open(os.environ["MULE_RESULTS"], "a") as f:
        f.write(line + "\n")
