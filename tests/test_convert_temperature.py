"""Temperature scaling: the fit, the ECE, and `edgefer calibrate` on an artifact's manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.metrics import expected_calibration_error
from edgefer.convert.temperature import (
    calibration_from_scores,
    fit_temperature,
    nll,
    softmax,
)

REPO = Path(__file__).resolve().parents[1]


def _overconfident(n: int = 4000, k: int = 7, seed: int = 0):
    """Scores of a 60 %-accurate classifier scaled far too sharp: the best temperature is clearly > 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), labels] += 1.2
    return logits * 4.0, labels


def test_fitted_temperature_minimises_nll_and_lowers_ece():
    scores, labels = _overconfident()
    t = fit_temperature(scores, labels)
    assert 2.0 < t < 8.0
    for other in (t * 0.8, t * 1.25, 1.0):
        assert nll(scores, labels, t) <= nll(scores, labels, other)
    before = expected_calibration_error(softmax(scores), labels)
    after = expected_calibration_error(softmax(scores, t), labels)
    assert after < before / 2
    assert (softmax(scores, t).argmax(1) == scores.argmax(1)).all()  # accuracy untouched


def test_ece_of_a_perfectly_calibrated_toy_is_zero_and_of_a_liar_is_large():
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.0)
    sure = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert expected_calibration_error(sure, np.array([1, 1])) == pytest.approx(1.0)


def test_bad_scores_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))


def test_calibration_record_round_trips_through_the_manifest_type():
    from edgefer.runtime.manifest import Calibration

    scores, labels = _overconfident(1000)
    cal = calibration_from_scores(scores, labels, "toy val")
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert cal.ece_after < cal.ece_before
    assert cal.ece_after_flip is None and "ece_after_flip" not in cal.to_dict()  # as manifests before it read
    # With the test-time flip scores: the temperature is still the single-pass one, the flip ECE is recorded.
    flipped = calibration_from_scores(scores, labels, "toy val", flip_scores=scores * 0.9)
    assert flipped.temperature == cal.temperature and flipped.ece_after_flip is not None
    assert Calibration.from_dict(flipped.to_dict()) == flipped


@pytest.mark.shared
def test_calibrate_command_writes_the_temperature_and_keeps_the_sha(tmp_path, fer_root):
    """`edgefer calibrate` on a copy of the shipped INT8 model: manifest gains a record, model file untouched."""
    from edgefer.cli import main
    from edgefer.runtime.manifest import Manifest

    val = fer_root / "val"
    pytest.importorskip("ai_edge_litert")
    src = REPO / "runtime" / "models" / "default_int8.tflite"
    art = tmp_path / src.name
    shutil.copy(src, art)
    shutil.copy(src.with_name(src.name + ".json"), tmp_path / (src.name + ".json"))
    assert main(["calibrate", "--model", str(art), "--data", str(val), "--limit-per-class", "40"]) == 0
    m = Manifest.load(art)  # sha256 still verifies
    assert m.calibration is not None and m.calibration.temperature > 0
    assert "280 faces" in m.calibration.fitted_on
    record = json.loads((tmp_path / (src.name + ".json")).read_text())["calibration"]
    assert record["ece_after"] is not None and 0 <= record["ece_after_flip"] < 1  # the runtime's default mode too
