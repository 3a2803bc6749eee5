"""--precise-bn: BatchNorm's moving averages replaced by the average of batch statistics under the final weights."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _model():
    import keras

    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(name="free")(inputs)
    frozen = keras.layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    return keras.Model(inputs, keras.layers.Dense(2)(frozen(x)))


def test_moving_statistics_become_the_average_of_the_batches():
    from edgefer.train.precise_bn import batchnorm_layers, recompute_batchnorm

    model = _model()
    free, frozen = model.get_layer("free"), model.get_layer("frozen")
    assert batchnorm_layers(model) == [free]  # a frozen layer keeps its statistics
    free.moving_mean.assign(np.full(4, 50.0, np.float32))  # stale, as a lagging average is
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 2.0, (16, 4)).astype(np.float32) for loc in (1.0, 3.0, 5.0)]
    assert recompute_batchnorm(model, batches) == 3
    np.testing.assert_allclose(free.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0), rtol=1e-5)
    np.testing.assert_allclose(free.moving_variance.numpy(), np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    assert free.momentum == pytest.approx(0.99)  # restored
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(4))


def test_a_run_recomputes_before_each_validation(synthetic_data, tmp_path, caplog):
    import logging

    from edgefer.train.trainer import TrainConfig, run_training

    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="edgefer.train.fit"):
        meta = run_training(TrainConfig(data=str(synthetic_data), out=str(out), input_size=32, model="cnn2",
                                        epochs=2, batch_size=16, head="softmax", augment=False, checkpoint_minutes=0,
                                        precise_bn=3))
    assert meta["training"]["config"]["precise_bn"] == 3
    said = [r.getMessage() for r in caplog.records if "BatchNorm statistics recomputed" in r.getMessage()]
    assert said == ["epoch 1: BatchNorm statistics recomputed from 3 training batches",
                    "epoch 2: BatchNorm statistics recomputed from 3 training batches"]
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 2


def test_a_negative_batch_count_or_unknown_precision_is_refused_before_any_data_loads():
    from edgefer.train.trainer import TrainConfig, validate_config

    with pytest.raises(ValueError, match="--precise-bn -1 is out of range"):
        validate_config(TrainConfig(data="missing", out="x", precise_bn=-1))
    with pytest.raises(ValueError, match="--precision 'float16' is not one of float32, mixed_bfloat16"):
        validate_config(TrainConfig(data="missing", out="x", precision="float16"))
