"""The code stays lint-clean and formatted (ruff, configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(ROOT / ".venv" / "bin")) or shutil.which("ruff")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "ruff", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("args", [("check", "zoo", "tools", "tests"), ("format", "--check", "zoo", "tools", "tests")])
def test_ruff(args):
    result = _ruff(*args)
    assert result.returncode == 0, f"ruff {' '.join(args)} failed (run 'make lint'):\n{result.stdout}{result.stderr}"
