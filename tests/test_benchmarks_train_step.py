"""benchmarks/train_step.py: each backend and loop in its own process, through edgefer's own loop; absent ones recorded."""

from __future__ import annotations

import json
import os

import pytest

from benchmarks import train_step


def test_times_the_step_edgefer_train_compiles_and_records_a_missing_backend(tmp_path, monkeypatch, capsys):
    # A backend whose module cannot be imported is recorded as skipped, not failed on.
    monkeypatch.setitem(train_step.BACKEND_MODULES, "torch", "edgefer_no_such_module")
    out = tmp_path / "step.json"
    assert train_step.main(["--model", "cnn2", "--input-size", "32", "--steps", "3", "--onednn", "off",
                            "--settings", "tensorflow:own,torch:fit", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    tf_row, torch_row = result["rows"]
    assert tf_row["backend"] == "tensorflow" and "failed" not in tf_row
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):  # Keras' own choice without a GPU, as `edgefer train` gets it
        assert tf_row["jit_compile"] is False
    assert tf_row["onednn"] is False and "onednn" not in torch_row and tf_row["precision"] == "float32"
    assert tf_row["loop"] == "own" and tf_row["steps_timed"] == 2 and tf_row["seconds_per_step"] > 0
    assert tf_row["params"] > 0 and tf_row["fer2013_epoch_minutes"] >= 0
    assert "edgefer_no_such_module is not installed" in torch_row["skipped"]
    assert result["command"].startswith("python benchmarks/train_step.py --model cnn2")
    assert "tensorflow own no oneDNN" in capsys.readouterr().out


def test_tensorflow_is_timed_with_and_without_onednn_by_default(monkeypatch, tmp_path):
    seen = []

    real_measure = train_step.measure
    monkeypatch.setitem(train_step.BACKEND_MODULES, "jax", "edgefer_no_such_module")

    def fake_measure(backend, loop, args, onednn=None, precision="float32"):
        seen.append((backend, loop, onednn, precision))
        return real_measure("jax", loop, args, None, precision)  # jax made unimportable: a skipped row

    monkeypatch.setattr(train_step, "measure", fake_measure)
    assert train_step.main(["--settings", "tensorflow:own,jax:fit", "--json", str(tmp_path / "s.json")]) == 0
    assert seen == [("tensorflow", "own", True, "float32"), ("tensorflow", "own", False, "float32"),
                    ("jax", "fit", None, "float32")]
    seen.clear()  # each setting in each precision asked for, each row saying which
    assert train_step.main(["--settings", "tensorflow:own", "--onednn", "on", "--precision", "float32,mixed_bfloat16",
                            "--json", str(tmp_path / "p.json")]) == 0
    assert seen == [("tensorflow", "own", True, "float32"), ("tensorflow", "own", True, "mixed_bfloat16")]
    rows = json.loads((tmp_path / "p.json").read_text())["rows"]
    assert [r["precision"] for r in rows] == ["float32", "mixed_bfloat16"]
    with pytest.raises(SystemExit):
        train_step.main(["--precision", "float16"])


def test_the_cli_asks_tensorflow_for_onednn_unless_the_user_chose(monkeypatch):
    from edgefer.cli import prefer_onednn

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


@pytest.mark.parametrize("setting", ["jax:xla", "mxnet:fit", "tensorflow"])
def test_a_bad_setting_is_refused_with_what_to_write(setting, capsys):
    with pytest.raises(SystemExit) as stop:
        train_step.main(["--settings", setting])
    assert stop.value.code == 2
    assert f"bad setting {setting!r}" in capsys.readouterr().err
