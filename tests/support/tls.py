"""Certificates for the TLS tests, made with the ``openssl`` command (Debian's
package): a CA, a server certificate for 127.0.0.1/localhost signed by it, a
client certificate it signed, and a second CA with a client of its own (the
wrong CA). ``make_pki(directory)`` returns the paths."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple


class Pki(NamedTuple):
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    cert2: Path  # a second server certificate (the swap on reload)
    key2: Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> None:
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3", "-subj", f"/CN={name}",
         cwd=d)  # fmt: skip


def _signed(d: Path, ca: str, name: str, subject: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)  # fmt: skip
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "3", "-extfile", f"{name}.ext",
         cwd=d)  # fmt: skip


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "otherca")
    server = "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    _signed(d, "ca", "server", "/CN=localhost", server)
    _signed(d, "ca", "server2", "/CN=localhost/O=Second", server)
    _signed(d, "ca", "client", "/C=FR/O=Example/CN=alice", "extendedKeyUsage=clientAuth\n")
    _signed(d, "otherca", "mallory", "/CN=mallory", "extendedKeyUsage=clientAuth\n")
    return Pki(
        d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key",
        d / "otherca.pem", d / "mallory.pem", d / "mallory.key", d / "server2.pem",
        d / "server2.key",
    )  # fmt: skip


class Chains(NamedTuple):
    """Client certificates under ``ca`` through intermediate CAs: each file holds
    the client's certificate, then the intermediates it needs (as a client sends them)."""

    one: Path  # client <- int1 <- ca
    one_key: Path
    two: Path  # client <- int2 <- int1 <- ca
    two_key: Path


def make_chains(d: Path) -> Chains:
    """In ``d`` (which holds make_pki's ``ca``): two intermediates and two clients."""
    inter = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
    client = "extendedKeyUsage=clientAuth\n"
    _signed(d, "ca", "int1", "/CN=int1", inter)
    _signed(d, "int1", "int2", "/CN=int2", inter)
    _signed(d, "int1", "deep1", "/CN=one-deep", client)
    _signed(d, "int2", "deep2", "/CN=two-deep", client)
    pem = {n: (d / f"{n}.pem").read_text() for n in ("int1", "int2", "deep1", "deep2")}
    (d / "chain1.pem").write_text(pem["deep1"] + pem["int1"])
    (d / "chain2.pem").write_text(pem["deep2"] + pem["int2"] + pem["int1"])
    return Chains(d / "chain1.pem", d / "deep1.key", d / "chain2.pem", d / "deep2.key")
