"""The committed benchmark results describe the models shipped now (a retrained model makes them stale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefer.runtime.manifest import sha256_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))


def _measured_models(result: dict) -> list[tuple[str, str | None]]:
    """(model path, recorded sha256) of every measurement in a latency, ops, accuracy or cross-dataset result."""
    entries = [*result.get("runs", []), *result.get("evaluations", []), *result.get("models", [])]
    if "model" in result:
        entries.append(result)
    return [(e["model"], e.get("sha256")) for e in entries if "model" in e]


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_result_names_its_command_and_measures_the_shipped_model(path):
    result = json.loads(path.read_text())
    assert result.get("command", "").startswith(("python benchmarks/", "edgefer ")), \
        f"{path.name} does not say how to regenerate it"
    for model, sha in _measured_models(result):
        shipped = ROOT / "runtime" / "models" / Path(model).name
        if "runtime/models/" not in model or not shipped.exists():
            continue  # a user's own model: nothing shipped to compare with
        assert sha is not None, f"{path.name}: the run of {Path(model).name} records no sha256"
        assert sha == sha256_of(shipped), (
            f"{path.name} measured another {shipped.name} than the one shipped: regenerate it with its command")
