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
    assert cal.views is None and "views" not in cal.to_dict()  # one view: as manifests before the views read
    # With each view setting's scores (averaged views are softer): a temperature each, the runtime's default
    # (flip and the tighter view) the headline one.
    by_views = {"one": scores, "flip": scores * 0.9, "zoom": scores * 0.85, "flip+zoom": scores * 0.8}
    views = calibration_from_scores(by_views, labels, "toy val")
    assert views.temperature == pytest.approx(cal.temperature * 0.8, rel=1e-3)
    assert views.temperature_for("one") == pytest.approx(cal.temperature, rel=1e-3)
    assert views.temperature_for("flip") == pytest.approx(cal.temperature * 0.9, rel=1e-3)
    assert views.temperature_for(None) == views.temperature_for("unknown") == views.temperature
    assert views.to_dict()["views"] == {"flip": True, "zoom": 0.9} and set(views.ece_after_by_views) == set(by_views)
    assert Calibration.from_dict(views.to_dict()) == views
    with pytest.raises(ValueError, match="lack the runtime's default"):
        calibration_from_scores({"one": scores}, labels, "toy val")
    # A manifest written before the views existed still reads: one temperature for every setting.
    old = {"temperature": 0.66, "fitted_on": "v", "ece_before": 0.16, "ece_after": 0.03, "ece_after_flip": 0.035}
    assert Calibration.from_dict(old).views is None and Calibration.from_dict(old).temperature_for("flip") == 0.66
    with pytest.raises(ValueError, match="calibration views must be"):
        Calibration.from_dict({**old, "views": {"flip": True}})


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
    # A temperature per view setting; the headline one is the runtime's default (flip and the tighter view).
    assert record["views"] == {"flip": True, "zoom": 0.9} and set(record["temperatures"]) == {
        "one", "flip", "zoom", "flip+zoom"}
    assert record["temperature"] == record["temperatures"]["flip+zoom"]
    assert record["ece_after"] is not None and all(0 <= e < 1 for e in record["ece_after_by_views"].values())
