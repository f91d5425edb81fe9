"""The worker under pressure from its clients, end to end (issue 15 holes 2, 5,
7 and 8; issue 16 item 6): memory per connection stays bounded whatever a
client sends or fails to read, a slow reader holds its own connection and never
the worker, running out of descriptors pauses accepting without crashing,
and a reset upload frees its temporary file at once. Each test waits on
what it can observe (a log line, the worker's RSS, its open files), never on a
guessed sleep."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import psutil
import pytest
from support import free_port, http_get, raise_nofile, read_until_closed, wait_for

MiB = 1 << 20


def start(procmaster, *extra, processes: int = 1):
    port = free_port()
    server = procmaster(
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        "pressureapp",
        "--processes",
        str(processes),
        *extra,
        wait_port=port,
    )
    wait_for(lambda: len(server.worker_pids()) == processes, 10, what="workers")
    return server, port


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def prompt_answers(port: int, n: int = 10, limit: float = 1.0) -> list[float]:
    """``n`` requests on fresh connections, each answered within ``limit`` seconds."""
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        status, _, body = http_get(port, "/", timeout=10)
        times.append(time.monotonic() - t0)
        assert (status, body) == (200, b"hello")
    assert max(times) < limit, times
    return times


def slow_client(port: int, request: bytes) -> socket.socket:
    """A client with a small receive buffer that sent ``request`` and reads nothing yet."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(request)
    return s


def read_slowly(sock: socket.socket, stop: threading.Event, got: list[int]) -> None:
    """Read about 64 KiB a second until ``stop`` or the end."""
    sock.settimeout(10)
    while not stop.is_set():
        data = sock.recv(16384)
        if not data:
            return
        got[0] += len(data)
        stop.wait(0.25)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


# -- hole 2: pipelined requests ------------------------------------------------------


def test_pipelined_big_responses_keep_the_worker_rss_bounded(procmaster):
    # a client that reads nothing for a while: the write deadline must not cut it here
    server, port = start(procmaster, "--socket-timeout", "60")
    pid = server.worker_pids()[0]
    prompt_answers(port, 3)
    base = rss(pid)
    n = 300  # 300 x 1 MiB: 300 MB of RSS if each response were made at once
    s = slow_client(port, get("/mb") * n)
    try:
        server.wait_log("GET /mb")  # the worker started on them
        peak = base
        t0 = time.monotonic()

        def watched():
            nonlocal peak
            peak = max(peak, rss(pid))
            return time.monotonic() - t0 > 2.0

        wait_for(watched, 10, what="two seconds of the worker's RSS")
        print(
            f"worker RSS growth, {n} pipelined 1 MiB responses unread: {(peak - base) / MiB:.1f} MiB"
        )
        assert peak - base < 40 * MiB, (base, peak)
        prompt_answers(port, 5)  # the others are served meanwhile
        # pipelining still works: every response arrives, in full, once read
        s.settimeout(10)
        mark = b"HTTP/1.1 200 OK"
        heads = 0
        tail = b""
        total = 0
        while heads < n or total < n * MiB:
            data = s.recv(1 << 20)
            assert data, f"closed after {heads} responses"
            total += len(data)
            window = tail + data  # a status line may span two reads
            heads += window.count(mark) - tail.count(mark)
            tail = window[-(len(mark) - 1) :]
        assert heads == n
        assert rss(pid) - base < 40 * MiB
    finally:
        s.close()


def test_pipelined_request_bytes_are_not_read_ahead_without_bound(procmaster):
    server, port = start(procmaster, "--socket-timeout", "60")
    pid = server.worker_pids()[0]
    prompt_answers(port, 3)
    base = rss(pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    sent = 0
    data = get("/mb") * 1000
    deadline = time.monotonic() + 5
    try:
        # the client writes pipelined requests and never reads: once the worker
        # holds back, the socket buffers fill and the client cannot send more
        while time.monotonic() < deadline:
            try:
                sent += s.send(data)
            except BlockingIOError:
                time.sleep(0.05)
        assert sent < 64 * MiB, sent
        assert rss(pid) - base < 40 * MiB
        prompt_answers(port, 5)
    finally:
        s.close()


# -- hole 5: out of descriptors ------------------------------------------------------


def test_out_of_descriptors_many_clients_no_crash_one_log_line_per_episode(procmaster):
    server, port = start(procmaster, "--listen", "400")
    pid = server.worker_pids()[0]
    # the worker's own limit, set from outside (lowering the test process's limit
    # to have it inherited would starve this process of descriptors instead)
    hard = psutil.Process(pid).rlimit(resource.RLIMIT_NOFILE)[1]
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, hard))
    assert psutil.Process(pid).rlimit(resource.RLIMIT_NOFILE)[0] == 64
    socks = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        server.wait_log("out of file descriptors")
        # hold them across several sweeps, closing a few now and then: each close
        # lets the worker accept one more (and hit the limit again), while the
        # sweep retries once a second: nothing may register a listener twice
        worker = psutil.Process(pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.5:
            for _ in range(3):
                socks.pop(0).close()
            # the worker took as many new connections as it freed: at its limit again
            wait_for(lambda: worker.num_fds() >= 63, 10, what="the worker at its fd limit")
            t1 = time.monotonic()
            wait_for(lambda t1=t1: time.monotonic() - t1 > 0.3, 5, what="a third of a second")
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: "descriptors free again" in server.log, 20, what="the end of the episode")
    prompt_answers(port, 10)
    log = server.log
    assert "internal error" not in log, log[-3000:]
    assert server.worker_pids() == [pid]  # the same worker, never restarted
    assert log.count("out of file descriptors") == 1, log[-3000:]
    assert log.count("descriptors free again") == 1


def test_asgi_out_of_descriptors_answers_every_connection_that_waited(procmaster):
    """At its descriptor limit the ASGI worker stops accepting for a moment: the
    connections waiting in the listen queue stay there (for it, or for another
    worker) and every one is answered. None is accepted only to be closed, as a
    server that takes its connections through libuv's own accept does (it
    closes all that wait, to keep its loop from spinning)."""
    raise_nofile(1024)
    port = free_port()
    server = procmaster(
        "--http-socket", f"127.0.0.1:{port}", "--asgi", "asgiapp:app",
        "--processes", "1", "--listen", "400",
        wait_port=port, nofile=64,
    )  # fmt: skip
    request = b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    socks = []
    try:
        for _ in range(150):  # more than the worker has descriptors for
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.sendall(request)
            socks.append(s)
        # (a reset: accepted and closed unanswered)
        answers = [read_until_closed(s).split(b"\r\n", 1)[0] for s in socks]
    finally:
        for s in socks:
            s.close()
    assert answers == [b"HTTP/1.1 200 OK"] * 150, set(answers)
    assert "out of file descriptors" in server.log  # the limit was reached
    wait_for(lambda: "descriptors free again" in server.log, 20, what="the end of the episode")
    assert http_get(port, "/", timeout=10)[0] == 200  # and it goes on
    # one line per episode, not one per pause (the queue may empty between two
    # of this test's connects, so there may be more than one episode)
    assert server.log.count("out of file descriptors") == server.log.count("free again")
    assert "internal error" not in server.log and "Traceback" not in server.log


# -- hole 7: slow readers ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["static", "file_wrapper", "generator", "write"])
def test_a_slow_reader_does_not_hold_the_worker(procmaster, tmp_path, kind):
    big = tmp_path / "static" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(50 * MiB)
    server, port = start(procmaster, "--static-map", f"/static={big.parent}")
    path = {
        "static": "/static/big.bin",
        "file_wrapper": f"/file?path={big}",
        "generator": "/gen?n=800",
        "write": "/write?n=800",
    }[kind]
    s = slow_client(port, get(path))
    stop = threading.Event()
    got = [0]
    reader = threading.Thread(target=read_slowly, args=(s, stop, got))
    reader.start()
    try:
        wait_for(lambda: got[0] > 0, 10, what="the slow client's first bytes")
        # meanwhile the same single worker answers everyone else at once
        prompt_answers(port, 20)
        assert got[0] < 20 * MiB  # the slow client is still far from the end
    finally:
        stop.set()
        reader.join(15)
        s.close()
    prompt_answers(port, 3)


# -- hole 8: uploads reset mid-body ------------------------------------------------


def spool_files(pid: int) -> int:
    """The worker's open descriptors on deleted temporary files (spooled bodies)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith("(deleted)"):
            count += 1
    return count


def test_uploads_reset_mid_body_free_their_temp_files_at_once(procmaster):
    server, port = start(procmaster)
    pid = server.worker_pids()[0]
    before = spool_files(pid)
    head = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
    chunk = b"u" * 65536
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head)
        for _ in range(24):  # 1.5 MB of 10 MB: past the spool threshold
            s.sendall(chunk)
        # RST instead of FIN
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # the worker saw every reset: it answers a request after them
    prompt_answers(port, 3)
    wait_for(lambda: spool_files(pid) <= before, 10, what="the spool files to be closed")
    assert psutil.Process(pid).num_fds() < 40


# -- issue 16 item 6: threads stream with back-pressure --------------------------------


def test_threads_stream_each_chunk_as_it_is_produced(procmaster, tmp_path):
    server, port = start(procmaster, "--threads", "4")
    marker = tmp_path / "go"
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    try:
        s.sendall(get(f"/stream?marker={marker}"))
        got = b""
        while b"first;" not in got:
            data = s.recv(4096)
            assert data, got
            got += data
        # the first chunk arrived while the app still waits for the marker
        marker.write_text("go")
        while b"0\r\n\r\n" not in got:
            data = s.recv(4096)
            assert data, got
            got += data
        assert b"done" in got and b"timeout" not in got
        assert b"Transfer-Encoding: chunked" in got
    finally:
        s.close()


@pytest.mark.parametrize("path", ["/gen?n=3000", "/write?n=3000"])
def test_threads_a_slow_client_holds_bounded_memory(procmaster, path):
    server, port = start(procmaster, "--threads", "4")
    pid = server.worker_pids()[0]
    prompt_answers(port, 3)
    base = rss(pid)
    s = slow_client(port, get(path))  # 3000 x 64 KiB = 190 MiB, never read
    try:
        peak = base
        t0 = time.monotonic()

        def watched():
            nonlocal peak
            peak = max(peak, rss(pid))
            return time.monotonic() - t0 > 2.0

        wait_for(watched, 10, what="two seconds of the worker's RSS")
        print(f"worker RSS growth, threads, {path} unread: {(peak - base) / MiB:.1f} MiB")
        assert peak - base < 40 * MiB, (base, peak)
        prompt_answers(port, 5)  # three threads and the loop are free
    finally:
        s.close()


@pytest.mark.parametrize("kind", ["static", "file_wrapper"])
def test_threads_send_files_without_holding_an_app_thread(procmaster, tmp_path, kind):
    big = tmp_path / "static" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(50 * MiB)
    server, port = start(
        procmaster,
        "--threads",
        "2",
        "--offload-threads",
        "2",
        "--static-map",
        f"/static={big.parent}",
    )
    pid = server.worker_pids()[0]
    prompt_answers(port, 3)
    base = rss(pid)
    readers = []
    stop = threading.Event()
    try:
        for _ in range(4):  # more slow static clients than app threads
            path = "/static/big.bin" if kind == "static" else f"/file?path={big}"
            s = slow_client(port, get(path))
            got = [0]
            t = threading.Thread(target=read_slowly, args=(s, stop, got))
            t.start()
            readers.append((s, t, got))
        wait_for(lambda: all(r[2][0] for r in readers), 10, what="every slow client's first bytes")
        prompt_answers(port, 10)
        # sent from the file as the clients read, not read whole into a thread's memory
        assert rss(pid) - base < 40 * MiB
    finally:
        stop.set()
        for s, t, _ in readers:
            t.join(15)
            s.close()
