"""uWSGI's RPC on the local node (register_rpc, call, rpc, rpc_list): the same app under
uWSGI 2.0 where it is installed gives the reference answers."""

from __future__ import annotations

import pytest
from support.side import needs_uwsgi, sides


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_rpc_app", None, processes=1)


@needs_uwsgi
def test_every_rpc_call_answers_as_uwsgi_does(instance):
    ours = instance("procmaster").json("/sequence")
    theirs = instance("uwsgi").json("/sequence")
    assert ours == theirs
    assert ours[2] == ["call", "hello "]  # a registered function ran


def test_rpc_to_another_node_is_refused_not_faked(instance):
    inst = instance("procmaster")
    assert inst.json("/remote") == ["rpc", "ValueError"]
