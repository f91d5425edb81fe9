"""Unit fixtures: pure code, no processes, no sockets beyond socketpairs."""

from __future__ import annotations

import pytest

from procmaster.config import load


@pytest.fixture
def config():
    """``config(*argv)``: the frozen ``Config`` for command-line arguments."""

    def build(*argv: str):
        return load([str(a) for a in argv])

    return build
