"""--precision mixed_bfloat16: layers compute in bfloat16 while training, everything saved ends up float32."""

from __future__ import annotations

import json

import pytest

from edgefer.runtime.preprocess import InputSpec


def test_use_precision_sets_every_layer_but_the_output_and_back():
    from edgefer.train.model import build_model
    from edgefer.train.precision import check_precision, precision_of, use_precision

    model = build_model("cnn2", InputSpec(height=32, width=32), 7)
    assert precision_of(model) == "float32"
    use_precision(model, "mixed_bfloat16")
    assert precision_of(model) == "mixed_bfloat16"
    assert model.layers[-1].dtype_policy.name == "float32"  # the scores the loss sees
    assert all(layer.dtype_policy.compute_dtype == "bfloat16" for layer in model.layers[:-1])
    assert all(w.dtype == "float32" for w in model.weights)  # the weights never change type
    use_precision(model, "float32")
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        check_precision("mixed_float16")  # needs loss scaling: not offered


def test_a_mixed_precision_run_saves_float32_models_and_resumes_only_in_its_precision(synthetic_data, tmp_path):
    import keras
    import numpy as np

    from edgefer.train.precision import precision_of
    from edgefer.train.trainer import TrainConfig, run_training

    out = tmp_path / "run"
    cfg = dict(data=str(synthetic_data), out=str(out), input_size=32, model="cnn2", epochs=2, batch_size=16,
               head="softmax", augment=False, checkpoint_minutes=0)
    meta = run_training(TrainConfig(**cfg, precision="mixed_bfloat16"))
    assert meta["training"]["config"]["precision"] == "mixed_bfloat16"
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["precision"] == "mixed_bfloat16" and state["epoch"] == 2
    # What training left behind as the best epoch (cnn.keras) and the run's model are float32 layer by layer.
    for name in ("cnn.keras", "model.keras"):
        model = keras.models.load_model(out / name)
        assert precision_of(model) == "float32", name
        assert model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0).dtype == np.float32
    # The checkpoint it would resume from still computes in bfloat16: resuming it as float32 is refused.
    assert precision_of(keras.models.load_model(out / "checkpoint" / "last.keras")) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="started with --precision mixed_bfloat16"):
        run_training(TrainConfig(**{**cfg, "epochs": 3}, resume=True))


def test_a_fold_finished_before_precision_existed_counts_as_float32(tmp_path):
    from dataclasses import asdict

    from edgefer.train.trainer import TrainConfig, finished_fold

    cfg = TrainConfig(data="d", out=str(tmp_path))
    old = {k: v for k, v in asdict(cfg).items() if k != "precision"}  # a meta.json written before the setting
    (tmp_path / "meta.json").write_text(json.dumps({"training": {"config": old}}))
    assert finished_fold(cfg, tmp_path) is not None
    with pytest.raises(ValueError, match="precision"):
        finished_fold(TrainConfig(data="d", out=str(tmp_path), precision="mixed_bfloat16"), tmp_path)


def test_bfloat16_on_a_cpu_without_its_instructions_is_called_out(tmp_path):
    from edgefer.train.precision import cpu_bf16_note

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse2 avx avx2 fma\n")
    bf16 = tmp_path / "bf16"
    bf16.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16\n")
    assert "--precision float32" in cpu_bf16_note(avx2)
    assert cpu_bf16_note(bf16) is None
    assert cpu_bf16_note(tmp_path / "missing") is None  # not Linux: nothing to say
