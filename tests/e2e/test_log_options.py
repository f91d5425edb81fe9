"""uWSGI's logging options with real processes: conditional request logging under
disable-logging, file loggers (keyval form, rotation by maxsize), log-route to a
named logger, log-encoder json/format, req-logger with log-req-encoder,
log-date and logformat-strftime."""

from __future__ import annotations

import json
import re
import socket
import time

from support import free_port, http_get, raw_request, wait_for


def _ini(tmp_path, port: int, body: str):
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\nmaster = true\n"
        "processes = 1\n" + body
    )
    return ini


def _text(path) -> str:
    return path.read_text() if path.exists() else ""


def test_conditional_request_logging_under_disable_logging(procmaster, tmp_path):
    port = free_port()
    log = tmp_path / "site.log"
    data = tmp_path / "data.bin"
    data.write_bytes(b"d" * 1000)
    ini = _ini(
        tmp_path,
        port,
        f"logto = {log}\ndisable-logging = true\nlog-4xx = true\nlog-5xx = true\n"
        "log-slow = 300\nlog-big = 100000\nlog-zero = true\nlog-sendfile = true\n"
        "log-ioerror = true\n",
    )
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/")[0] == 200  # none of the conditions: not logged
    assert http_get(port, "/nope")[0] == 404
    assert http_get(port, "/error")[0] == 500
    assert http_get(port, "/sleep?s=0.5")[0] == 200
    assert http_get(port, "/big?mb=1")[0] == 200
    assert http_get(port, "/stream?n=0")[0] == 200
    assert http_get(port, f"/file?path={data}")[0] == 200
    # a client that goes away in the middle of a big response (log-ioerror)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
    wait_for(lambda: "GET /big?mb=64 " in _text(log), 20, what=f"the cut request:\n{_text(log)}")
    assert http_get(port, "/nope-last")[0] == 404
    wait_for(lambda: "GET /nope-last " in _text(log), 20, what="the last request line")
    lines = [line for line in _text(log).splitlines() if " => generated " in line]
    logged = {re.search(r"\] (GET \S+) =>", line).group(1) for line in lines}
    assert logged == {
        "GET /nope",
        "GET /error",
        "GET /sleep?s=0.5",
        "GET /big?mb=1",
        "GET /stream?n=0",
        f"GET /file?path={data}",
        "GET /big?mb=64",
        "GET /nope-last",
    }, "\n".join(lines)


def test_disable_logging_alone_logs_nothing(procmaster, tmp_path):
    port = free_port()
    log = tmp_path / "site.log"
    ini = _ini(tmp_path, port, f"logto = {log}\ndisable-logging = true\n")
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/nope")[0] == 404
    assert http_get(port, "/error")[0] == 500
    wait_for(lambda: "error in the app" in _text(log), what="the app error")
    assert " => generated " not in _text(log)


def test_file_logger_keyval_form_rotates_at_maxsize(procmaster, tmp_path):
    port = free_port()
    log = tmp_path / "app.log"
    ini = _ini(tmp_path, port, f"logger = file:logfile={log},maxsize=3000\n")
    procmaster("--ini", ini, wait_port=port)
    for i in range(40):
        assert http_get(port, f"/?n={i}")[0] == 200
    wait_for(lambda: "GET /?n=39 " in _text(log), 20, what="the last line")
    backups = sorted(tmp_path.glob("app.log.*"))
    assert backups, "no rotation past maxsize"
    text = "".join(p.read_text() for p in [*backups, log])
    for i in range(40):  # no line lost across the rotations
        assert f"GET /?n={i} " in text
    assert all(p.stat().st_size < 3000 + 1000 for p in backups)


def test_malformed_file_logger_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    ini = tmp_path / "bad.ini"
    ini.write_text("[uwsgi]\nmodule = testapp\nlogger = file:logfile=/tmp/x,maxsize=big\n")
    done = subprocess.run(
        [sys.executable, "-m", "procmaster", "--check", str(ini)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "bad.ini:3" in done.stderr + done.stdout and "maxsize" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_json_encoder_lines_parse(procmaster, tmp_path):
    port = free_port()
    log = tmp_path / "site.log"
    ini = _ini(
        tmp_path,
        port,
        f"logto = {log}\n"
        'log-encoder = json {"unix":${unix},"micros":${micros},'
        '"date":"${strftime:%%Y-%%m-%%d}","msg":"${msg}"}\n'
        "log-encoder = nl\n",
    )
    procmaster("--ini", ini, wait_port=port)
    raw_request(port, b'GET /nope?q="quoted"\\x HTTP/1.0\r\n\r\n')
    assert http_get(port, "/")[0] == 200
    wait_for(lambda: "GET / =>" in _text(log), 20, what="the request line")
    records = [json.loads(line) for line in _text(log).splitlines()]
    assert any("procmaster" in r["msg"] for r in records)  # the master's lines too
    quoted = [r for r in records if 'GET /nope?q="quoted"\\x =>' in r["msg"]]
    assert len(quoted) == 1, records
    now = time.time()
    for r in records:
        assert abs(r["unix"] - now) < 300 and abs(r["micros"] / 1e6 - now) < 300
        assert r["date"] == time.strftime("%Y-%m-%d", time.localtime(r["unix"]))
        assert not r["msg"].endswith("\n")


def test_log_route_to_named_logger_and_format_encoder(procmaster, tmp_path):
    port = free_port()
    main = tmp_path / "main.log"
    reqs = tmp_path / "requests.log"
    ini = _ini(
        tmp_path,
        port,
        f"logger = file:{main}\nlogger = reqs file:{reqs}\n"
        "log-route = reqs => generated\n"
        "log-encoder = format:reqs [${strftime:%%Y}] ${msgnl}\n",
    )
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/")[0] == 200
    wait_for(lambda: "GET / =>" in _text(reqs), 20, what="the routed request line")
    year = time.strftime("%Y")
    assert _text(reqs).startswith(f"[{year}] [pid: ")
    assert "GET / =>" not in _text(main)  # a routed line goes nowhere else
    assert "procmaster master pid" in _text(main)
    assert "procmaster master pid" not in _text(reqs)


def test_req_logger_with_its_own_encoder(procmaster, tmp_path):
    port = free_port()
    main = tmp_path / "main.log"
    reqs = tmp_path / "req.log"
    ini = _ini(
        tmp_path,
        port,
        f"logto = {main}\nreq-logger = file:{reqs}\n"
        "log-req-encoder = prefix REQ\nlog-req-encoder = suffix <\n",
    )
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/")[0] == 200
    wait_for(lambda: "GET / =>" in _text(reqs), 20, what="the request line")
    line = _text(reqs).splitlines()[0]
    assert line.startswith("REQ[pid: ")
    assert _text(reqs).endswith("\n<")  # suffix after the newline, as uWSGI
    assert "GET / =>" not in _text(main)


def test_log_date_dates_procmaster_lines_not_request_lines(procmaster, tmp_path):
    """As uWSGI 2.0: 'FORMAT - ' before the server's own lines; request lines are
    written undated (use %(ftime) with logformat-strftime for a dated line)."""
    port = free_port()
    log = tmp_path / "site.log"
    ini = _ini(
        tmp_path,
        port,
        f"logto = {log}\nlog-date = %%Y-%%m-%%d\nlogformat-strftime = true\n"
        "log-format = %(method) %(uri) [%(ftime)]\n",
    )
    procmaster("--ini", ini, wait_port=port)
    assert http_get(port, "/")[0] == 200
    today = time.strftime("%Y-%m-%d")
    wait_for(lambda: f"GET / [{today}]" in _text(log), 20, what=f"the request line:\n{_text(log)}")
    lines = _text(log).splitlines()
    assert any(line.startswith(f"{today} - ") and "master pid" in line for line in lines)
    assert f"GET / [{today}]" in lines
