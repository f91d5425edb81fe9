"""PEP 3333 glue (procmaster/wsgi.py), pure: ``start_response`` and its rules,
``exc_info`` re-raise, ``write()``, request bodies spooled to a file, the
``wsgi.file_wrapper``, the scheme and the per-worker environ."""

from __future__ import annotations

import io
import sys
import traceback

import pytest

from procmaster.wsgi import (
    EMPTY_INPUT,
    Body,
    FileWrapper,
    Response,
    base_environ,
    close_iterable,
    url_scheme,
)


def response():
    written: list[tuple[Response, bytes]] = []
    resp = Response(lambda r, data: written.append((r, data)))
    return resp, written


# -- start_response ---------------------------------------------------------------


def test_start_response_records_status_and_headers_and_returns_write():
    resp, _ = response()
    headers = [("Content-Type", "text/plain")]
    write = resp.start_response("200 OK", headers)
    assert resp.status == "200 OK"
    assert resp.headers is headers  # never copied nor changed
    assert write == resp.write
    assert not resp.headers_sent


@pytest.mark.parametrize("status", [b"200 OK", "200", "200OK", "2000 OK", 200, None])
def test_start_response_refuses_a_malformed_status(status):
    resp, _ = response()
    with pytest.raises(ValueError):
        resp.start_response(status, [])
    assert resp.status is None


@pytest.mark.parametrize("headers", [(("A", "b"),), {"A": "b"}, None])
def test_start_response_wants_a_list_of_headers(headers):
    resp, _ = response()
    with pytest.raises(TypeError):
        resp.start_response("200 OK", headers)


def test_start_response_twice_without_exc_info_is_an_error():
    resp, _ = response()
    resp.start_response("200 OK", [])
    with pytest.raises(AssertionError):
        resp.start_response("500 Internal Server Error", [])
    assert resp.status == "200 OK"


def _exc_info():
    try:
        raise KeyError("the app's own error")
    except KeyError:
        return sys.exc_info()


def test_exc_info_before_the_head_is_sent_replaces_the_response():
    resp, _ = response()
    resp.start_response("200 OK", [("A", "1")])
    resp.start_response("500 Internal Server Error", [("B", "2")], _exc_info())
    assert resp.status == "500 Internal Server Error"
    assert resp.headers == [("B", "2")]


def test_exc_info_as_first_call_is_allowed():
    resp, _ = response()
    resp.start_response("503 Service Unavailable", [], _exc_info())
    assert resp.status == "503 Service Unavailable"


def test_exc_info_after_the_head_was_sent_reraises_the_apps_error():
    resp, _ = response()
    resp.start_response("200 OK", [])
    resp.headers_sent = True
    info = _exc_info()
    with pytest.raises(KeyError) as caught:
        resp.start_response("500 Internal Server Error", [], info)
    assert caught.value is info[1]
    # with its own traceback, so the log shows where the app failed
    assert any(f.name == "_exc_info" for f in traceback.extract_tb(caught.value.__traceback__))
    assert resp.status == "200 OK"


# -- write() ----------------------------------------------------------------------


def test_write_forwards_bytes_to_the_writer():
    resp, written = response()
    write = resp.start_response("200 OK", [])
    write(b"one")
    write(b"")
    assert written == [(resp, b"one"), (resp, b"")]


def test_write_before_start_response_is_an_error():
    resp, written = response()
    with pytest.raises(AssertionError):
        resp.write(b"x")
    assert written == []


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), memoryview(b"x"), None])
def test_write_takes_bytes_only(data):
    resp, written = response()
    write = resp.start_response("200 OK", [])
    with pytest.raises(TypeError):
        write(data)
    assert written == []


def test_the_writer_can_be_replaced_after_start_response():
    # the threads' pool collects write() data instead of sending it
    resp, written = response()
    collected = []
    resp.writer = lambda r, data: collected.append(data)
    resp.start_response("200 OK", [])(b"x")
    assert collected == [b"x"] and written == []


# -- wsgi.input -------------------------------------------------------------------


def test_a_small_body_stays_in_memory():
    body = Body(threshold=100)
    body.write(b"hello ")
    body.write(b"world")
    assert body.size == 11
    assert body.file is None
    stream = body.stream()
    assert stream.read() == b"hello world"
    body.close()


def test_a_body_over_the_threshold_is_spooled_to_a_file():
    body = Body(threshold=10)
    body.write(b"0123456789")
    assert body.file is None  # at the threshold: still memory
    body.write(b"abc")
    assert body.file is not None and not body.buf
    body.write(b"def")
    assert body.size == 16
    stream = body.stream()
    assert stream is body.file
    assert stream.read(4) == b"0123"
    assert stream.readline() == b"456789abcdef"
    assert stream.read() == b""
    # the file holds nothing but the body: the app can never read past it
    body.close()
    assert body.file is None
    assert stream.closed


def test_a_spooled_body_streams_from_its_start_every_time():
    body = Body(threshold=1)
    body.write(b"abc")
    assert body.stream().read() == b"abc"
    assert body.stream().read() == b"abc"
    body.close()


def test_empty_input():
    assert EMPTY_INPUT.read() == b""
    assert EMPTY_INPUT.read(10) == b""
    assert EMPTY_INPUT.readline() == b""
    assert EMPTY_INPUT.readlines() == []
    assert list(EMPTY_INPUT) == []
    EMPTY_INPUT.close()


# -- wsgi.file_wrapper ------------------------------------------------------------


def test_file_wrapper_over_a_real_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    fh = open(path, "rb")
    wrapper = FileWrapper(fh, 4)
    assert wrapper.fileno() == fh.fileno()
    assert list(wrapper) == [b"xxxx", b"xxxx", b"xx"]
    wrapper.close()
    assert fh.closed


def test_file_wrapper_without_a_descriptor_is_iterated():
    wrapper = FileWrapper(io.BytesIO(b"abcdef"), 4)
    assert wrapper.fileno() is None  # BytesIO: UnsupportedOperation
    assert b"".join(wrapper) == b"abcdef"


def test_file_wrapper_of_an_object_with_read_only():
    class Reader:
        def __init__(self) -> None:
            self.parts = [b"a", b"b", b""]

        def read(self, size: int) -> bytes:
            return self.parts.pop(0)

    wrapper = FileWrapper(Reader())
    assert wrapper.fileno() is None
    assert not hasattr(wrapper, "close")  # nothing to close: close_iterable skips it
    assert list(wrapper) == [b"a", b"b"]
    close_iterable(wrapper)


def test_file_wrapper_default_block_size():
    assert FileWrapper(io.BytesIO()).blksize == 65536


# -- environ ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, scheme",
    [
        ({}, "http"),
        ({"HTTPS": "on"}, "https"),
        ({"HTTPS": "1"}, "https"),
        ({"HTTPS": "off"}, "http"),
        ({"REQUEST_SCHEME": "https"}, "https"),
        ({"UWSGI_SCHEME": "https", "REQUEST_SCHEME": "http"}, "https"),
        ({"REQUEST_SCHEME": "ftp"}, "http"),
    ],
)
def test_url_scheme(environ, scheme):
    assert url_scheme(environ) == scheme


def test_base_environ():
    env = base_environ(multithread=True, multiprocess=False)
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.errors"] is sys.stderr


def test_close_iterable_calls_close_once_when_there_is_one():
    calls = []

    class Result(list):
        def close(self) -> None:
            calls.append(1)

    close_iterable(Result())
    close_iterable([b"no close"])
    assert calls == [1]
