"""The INI corpus (tests/data/ini-corpus): each file's ``--check`` outcome as its
``.expected`` file says, the files with ``serve`` lines started for real, and the
values of ``get`` lines read by procmaster and by uWSGI 2.0 itself
(``uwsgi --ini FILE --get KEY``, which exits after reading the configuration)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from support import DATA, free_port, http_get, wait_for

from procmaster.cli import main
from procmaster.config import load
from procmaster.config.reader import canonical

CORPUS = DATA / "ini-corpus"
CASES = sorted(p.stem for p in CORPUS.glob("*.ini"))


def expected(name: str) -> list[tuple[str, str]]:
    out = []
    for line in (CORPUS / f"{name}.expected").read_text().splitlines():
        if line.strip():
            word, _, rest = line.partition(" ")
            out.append((word, rest))
    return out


def _env_for(name: str, tmp_path: Path, port: int) -> dict[str, str]:
    env = {"RUN_DIR": str(tmp_path), "PORT": str(port)}
    for word, rest in expected(name):
        if word == "env":
            key, _, value = rest.partition("=")
            env[key] = value
    return env


def test_corpus_is_big_enough():
    assert len(CASES) >= 30
    served = [n for n in CASES if any(w == "serve" for w, _ in expected(n))]
    assert len(served) >= 10
    for name in CASES:
        assert (CORPUS / f"{name}.expected").exists(), name


@pytest.mark.parametrize("name", CASES)
def test_check_outcome(name, tmp_path, monkeypatch, capsys):
    for key, value in _env_for(name, tmp_path, 8000).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    # the files name the apps of their projects: the verdict is the config's
    # (--check's app import is tested in test_newcomer.py)
    code = main(["--check", str(CORPUS / f"{name}.ini"), "--check-no-import"])
    out, err = capsys.readouterr()
    shown = f"--- stdout\n{out}--- stderr\n{err}"
    for word, rest in expected(name):
        if word == "exit":
            assert code == int(rest), shown
        elif word == "stdout":
            assert rest in out, shown
        elif word == "stdout-not":
            assert rest not in out, shown
        elif word == "stderr":
            assert rest in err, shown


SERVED = [n for n in CASES if any(w == "serve" for w, _ in expected(n))]


def _unix_get(path: str, url: str) -> tuple[int, bytes]:
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(10)
            self.sock.connect(path)

    conn = Conn("localhost")
    try:
        conn.request("GET", url)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("name", SERVED)
def test_served_for_real(name, procmaster, tmp_path):
    port = free_port()
    env = _env_for(name, tmp_path, port)
    directives = expected(name)
    unix = next((rest for w, rest in directives if w == "unix"), None)
    server = procmaster(
        "--ini",
        str(CORPUS / f"{name}.ini"),
        env=env,
        cwd=tmp_path,
        wait_port=None if unix else port,
        wait_unix=str(tmp_path / unix) if unix else None,
    )
    for word, rest in directives:
        if word == "serve":
            method, path, status, text = rest.split(" ", 3)
            assert method == "GET"
            if unix:
                got_status, body = _unix_get(str(tmp_path / unix), path)
            else:
                got_status, _, body = http_get(port, path)
            assert (got_status, text in body.decode()) == (int(status), True), (
                body[:300],
                server.log,
            )
        elif word == "log":
            server.wait_log(rest)
    if name == "procnames":
        assert psutil.Process(server.pid).name() == "shop master"
        names = sorted(psutil.Process(p).name() for p in server.worker_pids())
        assert names == ["shop worker 1", "shop worker 2"]
    if name == "logto-rotation-served":
        wait_for(lambda: "GET / HTTP/1.1" in (tmp_path / "requests.log").read_text())
    if name == "placeholders-custom":
        assert (tmp_path / "shop.pid").read_text().strip() == str(server.pid)
    if name == "logic-if-reload-served":
        # a graceful reload re-executes the master: the new image reads if-reload
        assert "pm-reloaded-image" not in server.log
        first = server.worker_pids()
        os.kill(server.pid, signal.SIGHUP)
        server.wait_log("pm-reloaded-image", timeout=60)
        wait_for(
            lambda: len(server.worker_pids()) == 2 and set(server.worker_pids()).isdisjoint(first),
            60,
        )
        assert http_get(port, "/")[0] == 200
    if name == "flask-unix-relative":
        assert oct(os.stat(tmp_path / "flask.sock").st_mode & 0o777) == "0o666"


# -- procmaster reads what uWSGI reads ---------------------------------------------------

UWSGI = shutil.which("uwsgi")
GETS = [n for n in CASES if any(w == "get" for w, _ in expected(n))]
_A, _B = "pm-corpus-start", "pm-corpus-end"


def _uwsgi_get(path: str, key: str, env: dict[str, str], cwd: Path) -> str | None:
    """uWSGI's first value of ``key`` (None: not set). ``print`` lines are printed
    while uWSGI reads the file, so the value is found between two sentinels."""
    argv = [UWSGI, "--ini", path, "--set-ph", f"{_A}={_A}", "--set-ph", f"{_B}={_B}"]
    argv += ["--get", _A, "--get", key, "--get", _B]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.decode().split("\n")
    end = len(lines) - 1 - lines[::-1].index(_B)
    start = len(lines) - 1 - lines[::-1].index(_A)
    found = lines[start + 1 : end]
    assert len(found) <= 1, found
    return found[0] if found else None


def _procmaster_get(cfg, key: str) -> str | None:
    want = canonical(key)
    return next((e.value for e in cfg.entries if canonical(e.key) == want), None)


def test_corpus_compares_enough_values_with_uwsgi():
    assert len(GETS) >= 20
    assert sum(1 for n in GETS for w, _ in expected(n) if w == "get") >= 50


@pytest.mark.skipif(UWSGI is None and not os.environ.get("CI"), reason="uwsgi is not installed")
@pytest.mark.parametrize("name", GETS)
def test_values_agree_with_uwsgi(name, tmp_path, monkeypatch):
    assert UWSGI is not None, "CI installs uwsgi (pip install uwsgi in .ci/run)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env.update(_env_for(name, tmp_path, 8000))
    path = str(CORPUS / f"{name}.ini")
    monkeypatch.chdir(tmp_path)
    cfg = load(["--ini", path], environ=env)
    keys = [rest for w, rest in expected(name) if w == "get"]
    ours = {key: _procmaster_get(cfg, key) for key in keys}
    theirs = {key: _uwsgi_get(path, key, env, tmp_path) for key in keys}
    assert ours == theirs


def test_reload_checks_the_if_reload_block_before_replacing_workers(procmaster, tmp_path):
    # the block is not read at the first start; the reload's check reads it as the
    # re-executed master would, finds the bad value and aborts: the old workers serve on
    port = free_port()
    ini = tmp_path / "site.ini"
    ini.write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = testapp\n"
        "if-reload\nprocesses = many\nendif\n"
    )
    server = procmaster("--ini", str(ini), cwd=tmp_path, wait_port=port)
    first = server.worker_pids()
    os.kill(server.pid, signal.SIGHUP)
    server.wait_log("aborted", timeout=60)
    assert "option 'processes': expected an integer, got 'many'" in server.log
    assert server.worker_pids() == first
    assert http_get(port, "/")[0] == 200
