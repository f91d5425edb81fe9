"""uWSGI's RPC on the local node (register_rpc, call, rpc, rpc_list): the same app under
uWSGI 2.0 where it is installed gives the reference answers."""

from __future__ import annotations

import pytest
from support.side import UWSGI, sides


@pytest.fixture
def instance(tmp_path):
    yield from sides(tmp_path, "uwsgi_rpc_app", None, processes=1)


def test_every_rpc_call_answers_as_uwsgi_does(instance):
    mine = instance("procmaster")
    ours = mine.json("/sequence")
    assert ours[2] == ["call", "hello "]  # a registered function ran
    # another node: uWSGI dials it; procmaster refuses it (ValueError), never a made-up None
    assert mine.json("/remote") == ["rpc", "ValueError"]
    if UWSGI is None:
        pytest.skip("uWSGI is not installed (.ci/run installs it): no reference answers")
    assert ours == instance("uwsgi").json("/sequence")
