"""The device side and the converter type-check (mypy), TensorRT code included, which no CI machine can run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_runtime_and_convert_type_check(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "convert", "runtime", "--ignore-missing-imports",
         "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues found" in proc.stdout
