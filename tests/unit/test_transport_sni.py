"""The SNI sources (transports/sni.py): exact names, then patterns in order,
then a directory of ``<name>.crt``/``.key``/``.ca``; hostile names never make a
path outside the directory, broken files are reported once, bad patterns and a
missing directory are refused when the options are read."""

from __future__ import annotations

import shutil

import pytest
from support.tls import make_pki

from procmaster.transports.sni import SniTable, host_name
from procmaster.transports.tls import TlsError, TlsFiles, context


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def made(files: TlsFiles):
    ctx = context(files)
    ctx.made_from = files  # which files answered, for the assertions
    return ctx


def table(pki, tmp_path, exact=(), regexps=(), ciphers=""):
    d = tmp_path / "certs"
    d.mkdir(exist_ok=True)
    t = SniTable.parse(list(exact), list(regexps), str(d), ciphers)
    t.reports = []
    t.report = t.reports.append
    t.contexts(made)
    return t, d


def put(d, name, pki, second=True):
    shutil.copy(pki.cert2 if second else pki.cert, d / f"{name}.crt")
    shutil.copy(pki.key2 if second else pki.key, d / f"{name}.key")


@pytest.mark.parametrize(
    "name, ok",
    [("example.com", True), ("a-b_c.x9", True), ("localhost", True), ("..", False),
     ("../secret", False), ("a/b", False), ("a..b", False), (".a", False), ("a.", False),
     ("", False), ("a\0b", False), ("a" * 64, False), ("é.example", False),
     (".".join(["a" * 60] * 5), False)],
)  # fmt: skip
def test_host_names(name, ok):
    assert host_name(name) is ok


def test_exact_then_patterns_in_order_then_the_directory(pki, tmp_path):
    t, d = table(
        pki, tmp_path,
        exact=[f"exact.example {pki.cert},{pki.key}"],
        regexps=[rf"^re[0-9]+\.example$ {pki.cert2},{pki.key2}", f"first.example,{pki.cert},{pki.key}",
                 f"example {pki.cert2},{pki.key2}"],
    )  # fmt: skip
    put(d, "dir.test", pki)
    assert t.choose("exact.example").made_from.cert == str(pki.cert)
    assert t.choose("re42.example").made_from.cert == str(pki.cert2)
    assert t.choose("xre42.example").made_from.cert == str(pki.cert2)  # searched: "example"
    assert t.choose("a.first.example").made_from.cert == str(pki.cert)  # the earlier pattern
    got = t.choose("dir.test")
    assert got.made_from == TlsFiles(str(d / "dir.test.crt"), str(d / "dir.test.key"), "", "")
    assert t.choose("dir.test") is got  # loaded once, kept
    assert t.choose("unknown.test") is None and t.reports == []


def test_the_directory_ca_and_ciphers(pki, tmp_path):
    t, d = table(pki, tmp_path, ciphers="ECDHE+AESGCM")
    put(d, "ca.test", pki)
    shutil.copy(pki.ca, d / "ca.test.ca")
    got = t.choose("ca.test").made_from
    assert got.ca == str(d / "ca.test.ca") and got.ciphers == "ECDHE+AESGCM"


def test_hostile_names_read_nothing_outside(pki, tmp_path):
    t, d = table(pki, tmp_path)
    put(tmp_path, "secret", pki)  # next to the directory: tmp/secret.crt, tmp/secret.key
    put(d, "inside", pki)
    for name in ("../secret", "..", "./inside", "inside/../../secret", "/" + str(tmp_path / "secret"),
                 "inside\0", "..%2fsecret"):  # fmt: skip
        assert t.choose(name) is None, name
    assert t.reports == []


def test_broken_files_are_reported_once_and_fall_back(pki, tmp_path):
    t, d = table(pki, tmp_path)
    (d / "bad.test.crt").write_text("not a certificate")
    (d / "bad.test.key").write_text("not a key")
    shutil.copy(pki.cert, d / "mismatch.test.crt")
    shutil.copy(pki.key2, d / "mismatch.test.key")
    for _ in range(3):
        assert t.choose("bad.test") is None
        assert t.choose("mismatch.test") is None
    assert len(t.reports) == 2
    assert "bad.test" in t.reports[0] and "default certificate" in t.reports[0]
    assert "does not match" in t.reports[1]


@pytest.mark.parametrize(
    "exact, regexps, directory, option, index, why",
    [([], ["ok cert,key", "(unclosed c,k"], "", "sni-regexp", 1, "not a regular expression"),
     ([], ["^x$ c"], "", "sni-regexp", 0, "expected REGEXP CERT,KEY"),
     (["name"], [], "", "sni", 0, "expected NAME CERT,KEY"),
     ([], [], "/nonexistent/dir", "sni-dir", 0, "is not a directory")],
)  # fmt: skip
def test_options_that_cannot_work(exact, regexps, directory, option, index, why):
    with pytest.raises(TlsError, match=why) as info:
        SniTable.parse(exact, regexps, directory, "")
    assert (info.value.option, info.value.index) == (option, index)
