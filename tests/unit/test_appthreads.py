"""The pool of app threads hands a response to the loop in chunks, with
back-pressure: a thread waits while its inbox is over the high-water mark,
the loop's ``take`` lets it go on, a cancelled job (the client is gone) stops
its thread at the next chunk, and a job's end is always reported once."""

from __future__ import annotations

import select
import threading

import pytest

from procmaster.appthreads import AppThreads, Job
from procmaster.scoreboard import Scoreboard
from procmaster.wsgi import FileWrapper, Response

HIGH = 1000


class Owner:
    pass


def wait_news(pool: AppThreads, timeout: float = 5.0) -> list[Job]:
    poller = select.poll()
    poller.register(pool.fileno(), select.POLLIN)
    assert poller.poll(timeout * 1000), "no news from the pool"
    return pool.finished()


def submit(pool: AppThreads, app) -> Job:
    resp = Response(None)
    job = Job(Owner(), app, {}, resp, b"")
    pool.submit(job)
    return job


@pytest.fixture
def pool():
    return AppThreads(2, Scoreboard(2), 0, high_water=HIGH)


def test_a_thread_waits_while_its_inbox_is_full(pool):
    produced = []
    release = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [])

        def body():
            for i in range(10):
                produced.append(i)
                yield b"x" * 600
            release.set()

        return body()

    job = submit(pool, app)
    assert wait_news(pool) == [job]
    # two chunks (1,200 bytes) fill the inbox; the third waits for the loop
    threading.Event().wait(0.3)  # give the thread the time to run ahead if it could
    assert len(produced) <= 3, produced
    chunks = []
    while not release.is_set() or not job.done:
        got, done = pool.take(job)
        chunks += got
        if done:
            break
        release.wait(0.01)
    got, done = pool.take(job)
    chunks += got
    assert done and b"".join(chunks) == b"x" * 6000


def test_a_cancelled_job_stops_its_thread_and_its_end_is_reported_once(pool):
    stopped = threading.Event()

    def app(environ, start_response):
        write = start_response("200 OK", [])
        try:
            while True:
                write(b"y" * 600)
        except OSError:
            stopped.set()
            raise

    job = submit(pool, app)
    assert wait_news(pool) == [job]
    pool.hold(job)  # the loop leaves the chunks: its client is behind
    pool.cancel(job)  # ... and goes away
    assert stopped.wait(5)
    assert wait_news(pool) == [job]
    assert job.done and job.error and "OSError" in job.error


def test_a_file_wrapper_goes_back_to_the_loop_unread(pool, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"z" * 100000)

    def app(environ, start_response):
        start_response("200 OK", [])
        return FileWrapper(open(path, "rb"))

    job = submit(pool, app)
    assert wait_news(pool) == [job]
    chunks, done = pool.take(job)
    assert done and not chunks and job.file is not None
    assert job.file.filelike.tell() == 0
    job.file.close()


def hello(environ, start_response):
    start_response("200 OK", [])
    return [b"hello"]


def eventfd_fired(pool: AppThreads) -> bool:
    return bool(select.select([pool.fileno()], [], [], 0)[0])


def test_a_loop_that_is_awake_takes_news_without_a_wake_up(pool):
    """Disarmed (the loop's poll returned): news is appended, the eventfd stays
    quiet, and the loop's next ``loop_sleeps`` says it must not sleep."""
    pool.loop_woke()
    job = submit(pool, hello)
    pause = threading.Event()  # never set: a sleep that is not a guess of the outcome
    for _ in range(500):  # the thread appends its news within a moment (5 s at most)
        if pool.news:
            break
        pause.wait(0.01)
    assert list(pool.news) == [job]
    assert not eventfd_fired(pool)
    assert pool.loop_sleeps() is False
    assert pool.finished(fired=False) == [job]
    assert pool.take(job) == ([b"hello"], True)


def test_a_loop_about_to_sleep_is_woken_by_news(pool):
    """Armed (the loop is about to poll with nothing waiting): news writes the
    eventfd, so a sleeping loop wakes."""
    assert pool.loop_sleeps() is True
    job = submit(pool, hello)
    assert wait_news(pool) == [job]
