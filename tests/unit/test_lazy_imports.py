"""A plain site loads only what it uses: the modules behind options a hello-world
site does not set (TLS, stats, watching files, static files, daemons, the check,
the emperor, ASGI, WebSockets ...) stay out of its processes, so start-up time and
idle memory do not silently grow back. (tests/e2e/test_worker_lazy_imports.py holds the
same list, ``support.lazy.LAZY``, against a real worker.)

The interpreter is fresh (``python -c``), as a start's is: the modules this test
process has imported say nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from email.utils import formatdate

from support import ROOT
from support.lazy import LAZY

from procmaster.protocols.head import imf_date

# what cli does for a hello-world site, short of binding and forking
START = """
import json, sys
from procmaster import cli
from procmaster.config import load
from procmaster.logs.files import log_problems
cfg = load(sys.argv[1:])
assert not log_problems(cfg)
from procmaster.master import run
from procmaster.master.triggers import FileTriggers
from procmaster.sockets import check_transports, socket_specs
from procmaster.worker import worker_main
from procmaster.app import load_apps
check_transports(cfg, socket_specs(cfg))
assert FileTriggers().setup(cfg, print) is False
load_apps(cfg)
print(json.dumps(sorted(sys.modules)))
"""


def test_a_hello_world_start_loads_none_of_the_lazy_modules():
    out = subprocess.run(
        [sys.executable, "-c", START, "--http-socket", "127.0.0.1:0", "--master",
         "--processes", "2", "--wsgi-file", str(ROOT / "bench" / "apps" / "hello.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "procmaster.master.arbiter" in loaded and "procmaster.worker.loop" in loaded
    wrong = {m: why for m, why in LAZY.items() if m in loaded}
    assert not wrong, f"loaded by a plain start (lazy: only with these options): {wrong}"


def test_the_date_header_is_what_email_formatdate_gives():
    now = time.time()
    for when in (0, 784111777, 951782400, 2**31 - 1, 4102444799, now, now + 86400 * 200):
        assert imf_date(when) == formatdate(int(when), usegmt=True)


PRELOAD = """
import json, sys
from procmaster.config import load
from procmaster.worker import preload
preload(load(sys.argv[1:]))
print(json.dumps(sorted(sys.modules)))
"""


def test_the_master_preloads_the_protocols_its_sockets_speak_and_no_other():
    """Imported before the fork, the protocol modules (httptools for HTTP) are
    shared by the workers' pages instead of imported again in each worker."""
    out = subprocess.run(
        [sys.executable, "-c", PRELOAD, "--http-socket", "127.0.0.1:0",
         "--wsgi-file", str(ROOT / "bench" / "apps" / "hello.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert {"procmaster.protocols.http", "httptools"} <= loaded
    assert not loaded & {"procmaster.protocols.uwsgi", "procmaster.protocols.fastcgi"}
