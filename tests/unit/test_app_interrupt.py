"""Ctrl-C (or sys.exit) while the app is imported is not "the app failed to load"."""

from __future__ import annotations

import pytest

from procmaster.app import AppLoadError, load_apps
from procmaster.config import load


def _cfg(tmp_path, body: str):
    path = tmp_path / "interrupting_app.py"
    path.write_text(body)
    return load(["--wsgi-file", str(path)], environ={})


def test_keyboard_interrupt_during_import_goes_through(tmp_path):
    cfg = _cfg(tmp_path, "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        load_apps(cfg)


def test_system_exit_during_import_goes_through(tmp_path):
    cfg = _cfg(tmp_path, "import sys\nsys.exit(3)\n")
    with pytest.raises(SystemExit):
        load_apps(cfg)


def test_an_error_during_import_is_still_an_app_load_error(tmp_path):
    cfg = _cfg(tmp_path, "1 / 0\n")
    with pytest.raises(AppLoadError, match="ZeroDivisionError"):
        load_apps(cfg)
