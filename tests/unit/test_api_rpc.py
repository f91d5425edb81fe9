"""Local RPC: who may register, the table's limit, what a call answers."""

from __future__ import annotations

import pytest

from procmaster.api.rpc import Rpc


def test_mules_and_spoolers_cannot_register_and_the_table_has_a_limit():
    role = {"may": True}
    rpc = Rpc(2, lambda: role["may"])
    assert rpc.register_rpc("a", lambda: b"1") and rpc.register_rpc("b", lambda: b"2")
    with pytest.raises(ValueError):
        rpc.register_rpc("c", lambda: b"3")
    assert rpc.register_rpc("a", lambda: b"again")  # replacing is no new entry
    assert rpc.call(b"a") == b"again"
    role["may"] = False
    with pytest.raises(ValueError):
        rpc.register_rpc("a", lambda: b"x")
    assert rpc.rpc_list() == (b"a", b"b")


def test_another_node_is_refused_with_a_reason():
    rpc = Rpc(4, lambda: True)
    with pytest.raises(ValueError, match="local node only"):
        rpc.rpc(b"10.0.0.1:3031", b"a")
    with pytest.raises(ValueError):
        rpc.call(b"a", *([b"x"] * 256))
