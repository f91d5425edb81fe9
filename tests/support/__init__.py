"""What the tests share: ports, waiting on a condition, raw and HTTP requests, and
real procmaster processes that are always killed by PID (the master and every
descendant it had), never by name. The fixtures live in each folder's conftest."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
APPS = TESTS / "apps"
DATA = TESTS / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(want: int) -> None:
    """This (test) process's soft descriptor limit raised to ``want`` (at most the
    hard limit), for a test that opens many client sockets itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what="condition"):
    """Poll ``predicate`` until it returns a truthy value (never a blind sleep).
    ``what`` names the condition in the failure; a callable is asked at the
    timeout, so a log it shows is the log then, not when the wait began."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {said}")
        time.sleep(interval)


def http_get(
    port: int,
    path: str = "/",
    method: str = "GET",
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10.0,
    host: str = "127.0.0.1",
):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0, unix: str | None = None) -> bytes:
    """Send raw bytes and read until the server closes the connection. A close is
    seen as ``recv() == b""`` (or a reset); a server that neither answers nor
    closes within ``timeout`` seconds of silence fails the test (a request that
    should end its connection and does not is a bug, never an answer)."""
    if unix:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(unix)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                got = b"".join(chunks)
                raise AssertionError(
                    f"the server did not close the connection within {timeout}s "
                    f"(received {len(got)} bytes: {got[:300]!r})"
                ) from None
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        s.close()


def read_until_closed(s: socket.socket) -> bytes:
    """What a connection received until the server closed it; a reset (or any
    error) instead, as its repr, so that a list of answers says what each got."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError as exc:
        return repr(exc).encode()
    return data


def signal_pending(pid: int, sig: int) -> bool:
    """``sig`` was sent to ``pid`` and its handler has not run yet (/proc's masks).
    Once False, a Python process runs that handler before anything it does next."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    mask = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    return bool(mask & (1 << (sig - 1)))


class Background(threading.Thread):
    """A thread whose failure fails the test: ``join()`` re-raises, in the test's
    own thread, whatever the target raised (pytest only warns about an exception
    left in a thread), and fails when the thread is still running at the deadline.
    ``result`` holds what the target returned."""

    def __init__(self, target, *args) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self._args = args
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_fn(*self._args)
        except BaseException as exc:  # handed to the test's thread by join()
            self.error = exc

    def join(self, timeout: float | None = 60.0) -> None:
        super().join(timeout)
        if self.is_alive():
            raise AssertionError(f"{self._target_fn.__name__} still running after {timeout}s")
        if self.error is not None:
            raise self.error


def remember_descendants(pid: int, known: set[int]) -> None:
    """Add every live descendant of ``pid`` to ``known`` (to kill them by PID later)."""
    try:
        for kid in psutil.Process(pid).children(recursive=True):
            known.add(kid.pid)
    except psutil.NoSuchProcess:
        pass


def kill_tree(proc: subprocess.Popen, known: set[int], grace: float = 0.0) -> None:
    """Stop ``proc`` and every pid in ``known``, by PID, never by name: SIGTERM
    first when ``grace`` is given (a graceful stop, waited for that long), then
    SIGKILL to whatever is left, then reap ``proc``."""
    remember_descendants(proc.pid, known)
    if not grace and os.environ.get("COVERAGE_PROCESS_CONFIG"):
        grace = 3.0  # measured by tools/coverage.sh: a graceful stop writes the data
    if grace and proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    for pid in [proc.pid, *sorted(known - {proc.pid})]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class Server:
    """A running ``procmaster`` (the master process), its log and its ports."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict, log_path: Path, nofile: int | None = None
    ) -> None:
        self.args = args
        self.cwd = cwd
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        # ``nofile``: the master's soft descriptor limit (its workers inherit it), set
        # by prlimit(1) in the child, so the test process keeps its own limit
        limit = []
        if nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            limit = ["prlimit", f"--nofile={nofile}:{hard if hard >= 0 else 'unlimited'}", "--"]
        self.proc = subprocess.Popen(
            [*limit, sys.executable, "-m", "procmaster", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid
        self._known: set[int] = {self.pid}

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The master's worker processes (not the short-lived reload check)."""
        try:
            kids = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for kid in kids:
            self._known.add(kid.pid)
            try:
                if "PROCMASTER_PROBE" in kid.environ():
                    continue
            except psutil.Error:
                continue
            pids.append(kid.pid)
        return sorted(pids)

    def wait_workers(self, count: int, timeout: float = 30.0) -> list[int]:
        """The worker pids once at least ``count`` are forked (the first worker
        answers while the master may still be forking the others); the caller
        asserts the exact number."""
        wait_for(
            lambda: len(self.worker_pids()) >= count,
            timeout,
            what=f"{count} workers:\n{self.log[-3000:]}",
        )
        return self.worker_pids()

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_log(self, text: str, timeout: float = 10.0, count: int = 1) -> str:
        wait_for(
            lambda: self.log.count(text) >= count,
            timeout,
            what=lambda: f"{text!r} in the log:\n{self.log[-3000:]}",
        )
        return self.log

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def kill_all(self) -> None:
        kill_tree(self.proc, self._known)
        self.log_file.close()


def accepts(port: int, server: Server) -> bool:
    if server.proc.poll() is not None:
        raise AssertionError(f"procmaster exited with {server.proc.returncode}:\n{server.log}")
    try:
        status, _, _ = http_get(port, "/", timeout=2)
        return True
    except OSError:
        return False


def accepts_unix(path: str, server: Server) -> bool:
    if server.proc.poll() is not None:
        raise AssertionError(f"procmaster exited with {server.proc.returncode}:\n{server.log}")
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection the server has closed (or sent bytes on
    unasked) is readable: checked before reuse, as urllib3's pool does, since a
    request written into it would meet the close (RFC 9112 section 9.3.1)."""
    import select

    return conn.sock is not None and bool(select.select([conn.sock], [], [], 0)[0])


class Load:
    """Continuous requests from several threads (half keep-alive, half
    ``Connection: close``) until stopped; every failure is recorded.

    A GET on a kept-alive connection that the server closed as the request went
    out (no byte of an answer: the close crossed the request on the wire) is
    sent again once on a new connection, as browsers and urllib3 do and RFC 9112
    section 9.3.1 allows for an idempotent request; those are in ``retried``.
    A request on a new connection is never retried: its failure counts."""

    def __init__(
        self,
        port: int,
        path: str = "/",
        threads: int = 6,
        accept=None,
        timeout: float = 10.0,
        ssl_context=None,
    ):
        import threading

        self.port = port
        self.path = path
        self.accept = accept or (lambda status, body: status == 200)
        self.timeout = timeout
        self.failures: list = []
        self.retried: list = []
        self.counts = [0, 0]  # answered: on new connections, on kept-alive ones
        self.ssl_context = ssl_context  # HTTPS
        self.bodies: set = set()
        self.max_latency = 0.0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True)
            for i in range(threads)
        ]

    def _run(self, keepalive: bool) -> None:
        conn = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                if conn is not None and _dropped(conn):
                    conn.close()  # the server closed it while idle: reconnect, as urllib3 does
                    conn = None
                headers = {} if keepalive else {"Connection": "close"}
                reused = conn is not None
                if conn is None:
                    conn = self._connect()
                try:
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                    if not reused:
                        raise
                    self.retried.append(repr(e))
                    conn.close()
                    conn = self._connect()
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                body = resp.read()
                if not self.accept(resp.status, body):
                    self.failures.append((resp.status, body[:200]))
                self.bodies.add(body)
                if not keepalive or (resp.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
                self.counts[keepalive] += 1
                self.max_latency = max(self.max_latency, time.monotonic() - t0)
            except Exception as exc:  # every failure counts
                self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None

    @property
    def count(self) -> int:
        """Requests answered so far."""
        return self.counts[0] + self.counts[1]

    def _connect(self) -> http.client.HTTPConnection:
        if self.ssl_context is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.ssl_context, timeout=self.timeout
        )

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        wait_for(lambda: self.count > 50, 15, what="the load to run")
        return self

    def more(self, n: int = 100) -> None:
        """Wait until ``n`` more requests were answered (the site kept serving)."""
        start = self.count
        wait_for(lambda: self.count >= start + n, 20, what=f"{n} more requests")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
