"""--resume after a real interruption (the process killed mid-run): nothing lost, nothing counted twice."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edgefer.runtime.preprocess import InputSpec


def test_augmented_batches_depend_only_on_seed_epoch_and_batch():
    """A sequence started at epoch 1 serves what an uninterrupted one serves in its second epoch, in any thread."""
    from edgefer.train.augment import AugmentConfig
    from edgefer.train.data import make_sequence

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 24, 24), dtype=np.uint8)
    labels = np.arange(40) % 7
    spec = InputSpec(height=24, width=24, channels=3)
    whole = make_sequence(images, labels, spec, 7, 8, AugmentConfig(), seed=3, workers=2)
    first = [whole[i][0] for i in range(len(whole))]
    whole.on_epoch_end()
    resumed = make_sequence(images, labels, spec, 7, 8, AugmentConfig(), seed=3, first_epoch=1, workers=2)
    for i in reversed(range(len(whole))):  # order of requests does not matter
        np.testing.assert_array_equal(resumed[i][0], whole[i][0])
        np.testing.assert_array_equal(resumed[i][1], whole[i][1])
    assert not np.array_equal(first[0], whole[0][0])  # a new epoch is a new draw


# Epoch ends only (Keras' fit on JAX and PyTorch, or --checkpoint-minutes 0) is slow-marked: the default suite
# keeps one minute of it, the variant that also commits at every epoch's end.
@pytest.mark.parametrize("inside_epochs", [pytest.param(False, marks=pytest.mark.slow), True],
                         ids=["epoch-ends", "inside-epochs"])
def test_resume_after_a_kill_mid_run_continues_where_it_stopped(synthetic_data, tmp_path, inside_epochs):
    out = tmp_path / "run"
    # The smallest network: resuming is the same for every model, and a larger one only costs tracing (MobileNet's
    # first training step took ~26 s to trace on 2 cores, twice here).
    argv = [sys.executable, "-m", "edgefer", "train", "--data", str(synthetic_data), "--out", str(out),
            "--input-size", "32", "--model", "cnn2", "--epochs", "6", "--batch-size", "16", "--head", "softmax",
            "--workers", "2", "--checkpoint-minutes", "0.0001" if inside_epochs else "0"]
    state = out / "checkpoint" / "state.json"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            # Inside epochs: a state written after a step of epoch 3 (every step saves), not at an epoch's end.
            if state.is_file() and json.loads(state.read_text())["epoch"] >= 2 and (
                    not inside_epochs or json.loads(state.read_text()).get("partial", {}).get("step", 0) >= 3):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up of any kind: a power cut
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stopped = json.loads(state.read_text())
    stopped_at = stopped["epoch"]
    assert 2 <= stopped_at < 6

    done = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert inside_epochs == ("partial" in stopped)
    if inside_epochs:  # killed inside an epoch: it goes on from that step, not from the epoch's start
        step = stopped["partial"]["step"]
        assert f"resuming from {out / 'checkpoint' / 'partial.keras'} at epoch {stopped_at}, step {step} of 18" \
            in done.stderr
    else:
        assert f"resuming from {out / 'checkpoint' / 'last.keras'} at epoch {stopped_at}" in done.stderr
    with (out / "history.csv").open() as fh:
        epochs = [int(row["epoch"]) for row in csv.DictReader(fh)]
    assert epochs == list(range(6))  # every epoch logged once: none lost, none repeated
    assert json.loads(state.read_text()) == {**json.loads(state.read_text()), "epoch": 6}
    import keras

    last = keras.models.load_model(out / "checkpoint" / "last.keras")
    steps = int(np.ceil(280 / 16))  # the synthetic set's 280 training faces
    # The optimizer carried on (its step count drives the cosine schedule): 6 epochs of steps in all, none
    # done twice and none skipped, whether it stopped at an epoch's end or inside one.
    assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == 6 * steps
    assert json.loads((out / "meta.json").read_text())["head"] == "softmax"
    assert not list(out.rglob("*.partial*")) and not (out / "checkpoint" / "partial.keras").exists()


def test_mixup_blends_faces_and_labels_in_pairs():
    from edgefer.train.data import make_sequence

    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (16, 24, 24), dtype=np.uint8)
    labels = np.arange(16) % 7
    seq = make_sequence(images, labels, InputSpec(height=24, width=24, channels=3), 7, 8, None, mixup=0.4, workers=1)
    plain = make_sequence(images, labels, InputSpec(height=24, width=24, channels=3), 7, 8, None, workers=1)
    (x, y), (x0, y0) = seq[0], plain[0]
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)  # still a distribution over the 7 classes
    assert (y.max(axis=1) < 1).any() and x.shape == x0.shape and not np.allclose(x, x0)


def test_stronger_augmentation_levers_parse_and_are_checked():
    import pytest

    from edgefer.train.augment import AugmentConfig, augment_batch

    cfg = AugmentConfig.parse("crop_scale=0.6,contrast=0.7:1.3,blur=0.5,noise=5,occlusion=1")
    faces = np.full((4, 32, 32), 120, np.uint8)
    out = augment_batch(faces, np.random.default_rng(0), cfg)
    assert out.shape == faces.shape and out.dtype == np.uint8 and out.std() > 0
    for bad in ("crop_scale=0", "blur=2", "noise=-1"):
        with pytest.raises(ValueError):
            AugmentConfig.parse(bad)


def test_a_run_logging_to_a_file_reports_each_tenth_of_an_epoch(caplog):
    """With stdout not a terminal Keras prints one line an epoch; the progress callback fills the gap."""
    import logging

    from edgefer.train.fit import progress_callback

    progress = progress_callback(steps=20, epochs=3, min_gap_s=0)
    with caplog.at_level(logging.INFO, logger="edgefer.train.fit"):
        progress.on_epoch_begin(1)
        for batch in range(20):
            progress.on_train_batch_end(batch, {"loss": 1.5, "accuracy": 0.25, "learning_rate": 1e-3})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 9  # at 2, 4, ... 18 steps; the epoch's end is Keras' own line
    assert lines[0].startswith("epoch 2/3: 2/20 steps (loss 1.5000, accuracy 0.2500), ")
    assert lines[-1].startswith("epoch 2/3: 18/20 steps")
    assert "min left in the epoch" in lines[-1]
    assert not [line for line in lines if "learning_rate" in line]
    # Resumed inside the epoch, at step 11: the marks still to come, timed from the first step it ran.
    with caplog.at_level(logging.INFO, logger="edgefer.train.fit"):
        progress.on_epoch_begin(1)
        for batch in range(10, 20):
            progress.on_train_batch_end(batch, {"loss": 1.5, "accuracy": 0.25})
    resumed = [r.getMessage() for r in caplog.records][len(lines):]
    assert [line.split(" steps")[0] for line in resumed] == [f"epoch 2/3: {n}/20" for n in (12, 14, 16, 18)]


def test_the_progress_lines_of_short_epochs_keep_a_gap(caplog, monkeypatch):
    """A tenth reached sooner than min_gap_s after the last line (or the epoch's start) logs nothing."""
    import logging

    from edgefer.train import fit

    clock = iter(float(t) for t in range(0, 1000, 10))  # each call: 10 s later
    monkeypatch.setattr(fit.time, "monotonic", lambda: next(clock))
    progress = fit.progress_callback(steps=20, epochs=1, min_gap_s=25)
    with caplog.at_level(logging.INFO, logger="edgefer.train.fit"):
        progress.on_epoch_begin(0)  # t = 0; step n ends at t = 10 n
        for batch in range(20):
            progress.on_train_batch_end(batch, {"loss": 1.5})
    steps = [r.getMessage().split(" steps")[0] for r in caplog.records]
    assert steps == [f"epoch 1/1: {n}/20" for n in (4, 8, 12, 16)]  # marks 2, 6, 10, 14, 18 came too soon
