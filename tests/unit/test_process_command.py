"""How procmaster runs itself again, and how it knows a procmaster process."""

from __future__ import annotations

import subprocess
import sys

from procmaster.process import BOOTSTRAP, is_procmaster_argv, procmaster_command


def test_procmaster_command_runs_the_installed_package_whatever_the_cwd(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "procmaster.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "procmaster").mkdir()
    (tmp_path / "procmaster" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "procmaster" / "cli.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    result = subprocess.run(
        procmaster_command(["--version"]), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "procmaster" in result.stdout + result.stderr
    assert not marker.exists()


def test_is_procmaster_argv_by_shape_not_by_word():
    py = sys.executable.encode()
    assert is_procmaster_argv([py, b"-m", b"procmaster", b"--ini", b"a.ini"])
    assert is_procmaster_argv([py, b"-X", b"dev", b"-u", b"-m", b"procmaster"])
    assert is_procmaster_argv([py, b"-c", BOOTSTRAP.encode(), b"/site", b"--ini", b"x"])
    assert is_procmaster_argv([py, b"/usr/local/bin/procmaster", b"--ini", b"a.ini"])
    assert is_procmaster_argv([b"/opt/venv/bin/procmaster", b"--ini", b"a.ini"])
    # the word elsewhere does not make a procmaster
    assert not is_procmaster_argv([py, b"-m", b"pytest", b"--cov=procmaster"])
    assert not is_procmaster_argv([py, b"/venv/procmaster/bin/pytest", b"procmaster"])
    assert not is_procmaster_argv([py, b"-c", b"import procmaster", b"procmaster"])
    assert not is_procmaster_argv([b"sleep", b"60", b"procmaster"])
    assert not is_procmaster_argv([py, b"-m"])
    assert not is_procmaster_argv([])
