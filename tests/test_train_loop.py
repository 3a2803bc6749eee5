"""train/loop.py: the train_on_batch loop sees each epoch's batches once, in order, resumes exactly, and tells its
callbacks what Keras' fit tells them."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.preprocess import InputSpec


def recorder():
    """A callback that records every hook's epoch/step numbers and the epoch-end logs."""
    import keras

    class _Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple] = []
            self.epoch_logs: list[dict] = []

        def on_train_begin(self, logs=None):
            self.calls.append(("train_begin",))

        def on_epoch_begin(self, epoch, logs=None):
            self.calls.append(("epoch_begin", epoch))

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(("batch_end", batch, sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(("epoch_end", epoch))
            self.epoch_logs.append(dict(logs))

        def on_train_end(self, logs=None):
            self.calls.append(("train_end",))

    return _Recorder()


def _setup(class_weights=None, first_epoch: int = 0, seen: list | None = None, workers: int = 2):
    import keras

    from edgefer.train.config import TrainConfig
    from edgefer.train.data import make_sequence
    from edgefer.train.fit import compile_for_training
    from edgefer.train.model import build_model

    rng = np.random.default_rng(1)
    spec = InputSpec(height=32, width=32)
    faces, labels = rng.integers(0, 256, (50, 48, 48), dtype=np.uint8), rng.integers(0, 7, 50)
    keras.utils.set_random_seed(0)
    model = build_model("cnn2", spec, 7, dropout=0.0)
    compile_for_training(model, TrainConfig(data="", out="", lr=1e-2), steps=4, epochs=3)
    train = make_sequence(faces[:40], labels[:40], spec, 7, 12, None, seed=3, class_weights=class_weights,
                          first_epoch=first_epoch, workers=workers)
    if seen is not None:  # record which (epoch, batch) each fetch drew
        get = type(train).__getitem__
        type(train).__getitem__ = lambda self, i: (seen.append((self.epoch, i)), get(self, i))[1]
    val = make_sequence(faces[40:], labels[40:], spec, 7, 8, None, shuffle=False)
    return model, train, val


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "class-weighted"])
def test_own_loop_trains_each_epochs_batches_once_in_order_and_resumes_exactly(weighted):
    from edgefer.train.loop import fit_epochs

    weights = np.linspace(0.5, 2.0, 7).astype(np.float32) if weighted else None
    seen: list = []
    whole, train, val = _setup(weights, seen=seen)
    fit_epochs(whole, train, val, epochs=3, verbose=0, own_loop=True)
    assert seen == [(e, i) for e in range(3) for i in range(4)]
    # Stopped after epoch 1 and resumed with a new sequence that starts at epoch 1: the same weights.
    resumed, train, val = _setup(weights)
    fit_epochs(resumed, train, val, epochs=1, verbose=0, own_loop=True)
    _, train, _ = _setup(weights, first_epoch=1, workers=1)
    fit_epochs(resumed, train, val, epochs=3, initial_epoch=1, verbose=0, own_loop=True)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_own_loop_tells_callbacks_what_keras_fit_does():
    from edgefer.train.loop import fit_epochs

    heard = {}
    for own in (False, True):
        model, train, val = _setup()
        rec = recorder()
        fit_epochs(model, train, val, epochs=3, initial_epoch=1, callbacks=[rec], verbose=0, own_loop=own)
        heard[own] = rec
        # The epoch's logs: its training metrics and the validation ones measured after it.
        final = model.evaluate(val, verbose=0, return_dict=True)
        assert rec.epoch_logs[-1]["val_accuracy"] == pytest.approx(float(final["accuracy"]))
        assert rec.epoch_logs[-1]["val_loss"] == pytest.approx(float(final["loss"]), rel=1e-5)
    assert [c[:2] for c in heard[True].calls] == [c[:2] for c in heard[False].calls]  # epochs 1-2, 4 steps each
    assert [c[2] for c in heard[True].calls if c[0] == "batch_end"][0] == ["accuracy", "loss"]
    assert [sorted(logs) for logs in heard[True].epoch_logs] == \
        [sorted(k for k in logs if k != "learning_rate") for logs in heard[False].epoch_logs]


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "class-weighted"])
def test_own_loop_reports_the_epochs_means_as_fit_does(weighted):
    # train_on_batch resets the metrics at every call: the loop must average them over the epoch itself.
    # With a learning rate of 0 and no dropout or batch norm the model stays put, so the epoch's training
    # means equal evaluate() over the same batches (each batch weighted by its faces, as Keras does).
    import keras

    from edgefer.train.data import make_sequence
    from edgefer.train.loop import fit_epochs

    rng = np.random.default_rng(4)
    spec = InputSpec(height=16, width=16)
    faces, labels = rng.integers(0, 256, (44, 48, 48), dtype=np.uint8), rng.integers(0, 7, 44)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"],
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    weights = np.linspace(0.5, 2.0, 7).astype(np.float32) if weighted else None
    # 12, 12, 12, 8 faces: in the given order (a shuffled epoch tops its last batch up to 12).
    train = make_sequence(faces, labels, spec, 7, 12, None, class_weights=weights, shuffle=False)
    rec = recorder()
    fit_epochs(model, train, make_sequence(faces[:8], labels[:8], spec, 7, 8, None, shuffle=False), epochs=1,
               callbacks=[rec], verbose=0, own_loop=True)
    expected = model.evaluate(make_sequence(faces, labels, spec, 7, 12, None, class_weights=weights, shuffle=False),
                              verbose=0, return_dict=True)
    assert rec.epoch_logs[0]["loss"] == pytest.approx(float(expected["loss"]), rel=1e-5)
    assert rec.epoch_logs[0]["accuracy"] == pytest.approx(float(expected["accuracy"]), rel=1e-5)
    assert 0 < rec.epoch_logs[0]["accuracy"] < 1  # a mean over faces, not one batch's share


def test_batches_are_prepared_ahead_in_order():
    from concurrent.futures import ThreadPoolExecutor

    from edgefer.train.loop import _prefetched

    asked: list[int] = []

    class Seq:
        def __len__(self):
            return 7

        def __getitem__(self, i):
            asked.append(i)
            return i

    with ThreadPoolExecutor(3) as pool:
        got = list(_prefetched(Seq(), pool, depth=3))
    assert got == list(range(7)) and sorted(asked) == list(range(7))


def test_a_shuffled_epochs_last_batch_is_topped_up_to_one_shape():
    """Every training batch has one shape (a new one re-traces the step); each face still comes once an epoch."""
    from edgefer.runtime.preprocess import preprocess_faces
    from edgefer.train.data import make_sequence

    spec = InputSpec(height=16, width=16)
    faces = np.random.default_rng(2).integers(0, 256, (22, 16, 16), dtype=np.uint8)
    labels = np.arange(22) % 7
    train = make_sequence(faces, labels, spec, 7, 8, None, workers=1)
    batches = [train[i][0] for i in range(len(train))]
    assert len(train) == 3 and {b.shape[0] for b in batches} == {8}
    # The last batch: the epoch's 6 remaining faces, then its first 2 again.
    served = np.concatenate([train.order, train.order[:2]])
    assert sorted(set(served.tolist())) == list(range(22))
    np.testing.assert_array_equal(np.concatenate(batches), preprocess_faces(faces[served], spec))
    kept = make_sequence(faces, labels, spec, 7, 8, None, workers=1, shuffle=False)  # validation: as given
    assert kept[2][0].shape[0] == 6


def test_own_loop_stops_inside_an_epoch_and_resumes_there_exactly(tmp_path):
    """A save at step 2 of epoch 1, then a new process's model resumed from it: the same weights as a run never
    stopped, and the same logged means for the epoch that was cut in two."""
    import keras

    from edgefer.train.loop import EpochPosition, fit_epochs

    positions: list[EpochPosition] = []

    def save(position: EpochPosition) -> None:
        positions.append(position)
        if (position.epoch, position.step) == (1, 2):
            whole.save(tmp_path / "partial.keras")

    whole, train, val = _setup()
    rec = recorder()
    fit_epochs(whole, train, val, epochs=3, callbacks=[rec], verbose=0, own_loop=True, save=save, save_every_s=0)
    # Every step but an epoch's last (which the epoch's end saves), in order.
    assert [(p.epoch, p.step) for p in positions] == [(e, s) for e in range(3) for s in range(1, 4)]
    cut = next(p for p in positions if (p.epoch, p.step) == (1, 2))
    assert cut.faces == 2 * 12 and set(cut.sums) == {"accuracy", "loss"}

    resumed = keras.models.load_model(tmp_path / "partial.keras")
    _, train, val = _setup(first_epoch=1, workers=1)
    rec2 = recorder()
    fit_epochs(resumed, train, val, epochs=3, initial_epoch=1, callbacks=[rec2], verbose=0, own_loop=True,
               resume_at=cut)
    assert [c[1] for c in rec2.calls if c[0] == "batch_end"][:2] == [2, 3]  # the cut epoch's last two steps
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(rec2.epoch_logs, rec.epoch_logs[1:]):
        assert mine == pytest.approx(theirs, rel=1e-5)
    with pytest.raises(ValueError, match="initial_epoch"):
        fit_epochs(resumed, train, val, epochs=3, initial_epoch=2, verbose=0, own_loop=True, resume_at=cut)
