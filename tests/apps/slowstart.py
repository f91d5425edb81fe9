"""The test app, slow to import (lazy-apps: each worker imports it): a worker is
ready only a while after it was forked, so "READY=1 too early" shows."""

import os
import time

from testapp import application  # noqa: F401

time.sleep(float(os.environ.get("SLOWSTART_SECONDS", "0.8")))
