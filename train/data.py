"""Batches for Keras: augmented grey faces through the shared preprocessing."""

from __future__ import annotations

import os

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

from .augment import AugmentConfig, augment_batch
from .balance import balanced_order


def default_workers() -> int:
    """Threads preparing batches: one per core, at most 8 (OpenCV's warps and numpy release the GIL)."""
    return max(1, min(8, os.cpu_count() or 1))


def make_sequence(
    images: np.ndarray,
    labels: np.ndarray,
    spec: InputSpec,
    num_classes: int,
    batch_size: int,
    augment: AugmentConfig | None,
    seed: int = 0,
    class_weights: np.ndarray | None = None,
    balanced: bool = False,
    first_epoch: int = 0,
    workers: int = 0,
    mixup: float = 0.0,
    shuffle: bool = True,
    targets: np.ndarray | None = None,
):
    """A ``keras.utils.PyDataset`` yielding (preprocessed faces, one-hot labels), reshuffled each epoch.

    ``class_weights`` (one per class) adds per-sample loss weights; ``balanced``
    draws each epoch so every class is equally frequent instead of shuffling; ``shuffle=False``
    (validation) keeps the given order. A shuffled epoch's last batch is topped up to ``batch_size``
    with faces from the start of its order, so every training batch has one shape.
    Batches are built by ``workers`` threads (0: :func:`default_workers`) so augmentation
    keeps a GPU fed. Every random draw comes from ``(seed, epoch, batch)`` alone, so the
    stream does not depend on thread timing and a run resumed at ``first_epoch`` sees the
    same faces, in the same order and with the same augmentation, as one never stopped.
    Works on every Keras backend (no ``tf.data``). ``mixup`` > 0 blends each face and its
    one-hot label with another of the batch, weight ~ Beta(mixup, mixup) (Zhang et al. 2018).
    ``targets`` (N, num_classes) replaces the one-hot labels as what the loss compares against
    (distillation's soft targets); ``labels`` still orders balanced sampling and class weights.
    """
    import keras

    workers = workers or default_workers()

    class FaceSequence(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
            self.targets = np.eye(num_classes, dtype=np.float32)[labels] if targets is None else targets
            self.epoch = first_epoch
            self.order = self._next_order()

        def _next_order(self) -> np.ndarray:
            if not (shuffle or balanced):
                return np.arange(len(labels))
            rng = np.random.default_rng((seed, self.epoch))
            return balanced_order(labels, rng) if balanced else rng.permutation(len(labels))

        def __len__(self) -> int:
            return int(np.ceil(len(labels) / batch_size))

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            if (shuffle or balanced) and len(idx) < batch_size <= len(self.order):
                # A short last batch is topped up from the start of this epoch's order: one batch shape
                # for the whole run, since a new shape re-traces the training step (14 s of a 68-s toy
                # run on two cores; once per run, and per fold of a k-fold).
                idx = np.concatenate([idx, self.order[: batch_size - len(idx)]])
            batch = images[idx]
            rng = np.random.default_rng((seed, self.epoch, i))
            if augment is not None:
                batch = augment_batch(batch, rng, augment)
            x, y = preprocess_faces(batch, spec), self.targets[idx]
            w = None if class_weights is None else np.asarray(class_weights, np.float32)[labels[idx]]
            if mixup > 0 and len(idx) > 1:
                lam = rng.beta(mixup, mixup, len(idx)).astype(np.float32)
                other = rng.permutation(len(idx))
                x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[other]
                y = lam[:, None] * y + (1 - lam[:, None]) * y[other]
                w = None if w is None else lam * w + (1 - lam) * w[other]
            return (x, y) if w is None else (x, y, w)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._next_order()

    return FaceSequence()


def mirrored(images: np.ndarray) -> np.ndarray:
    """Each face of an (N, H, W) or (N, H, W, C) batch mirrored left to right: the second face of test-time flip."""
    return np.ascontiguousarray(images[:, :, ::-1])


def predict_batches(model, images: np.ndarray, spec: InputSpec, batch_size: int = 64) -> np.ndarray:
    """Run a Keras model over uint8 faces in batches, through the shared preprocessing.

    TensorFlow's CPU allocator keeps the memory of the largest batch for the life of the process:
    the 96-px VGG16 hybrid held 9.5 GB after batches of 256 and 2.0 GB after batches of 32.
    """
    import keras

    outs = [
        keras.ops.convert_to_numpy(model(preprocess_faces(images[i : i + batch_size], spec), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
