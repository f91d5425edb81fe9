"""The INI corpus (tests/data/ini-corpus): each file's ``--check`` outcome as its
``.expected`` file says, and the files with ``serve`` lines started for real."""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import psutil
import pytest
from support import DATA, free_port, http_get, wait_for

from procmaster.cli import main

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
    if name == "flask-unix-relative":
        assert oct(os.stat(tmp_path / "flask.sock").st_mode & 0o777) == "0o666"
