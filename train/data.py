"""Batches for Keras: augmented grey faces through the shared preprocessing."""

from __future__ import annotations

import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

from .augment import AugmentConfig, augment_batch


def make_sequence(
    images: np.ndarray,
    labels: np.ndarray,
    spec: InputSpec,
    num_classes: int,
    batch_size: int,
    augment: AugmentConfig | None,
    seed: int = 0,
):
    """A ``keras.utils.PyDataset`` yielding (preprocessed faces, one-hot labels), reshuffled each epoch."""
    import keras

    class FaceSequence(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(labels)) if augment else np.arange(len(labels))
            self.eye = np.eye(num_classes, dtype=np.float32)

        def __len__(self) -> int:
            return int(np.ceil(len(labels) / batch_size))

        def __getitem__(self, i: int):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            batch = images[idx]
            if augment is not None:
                batch = augment_batch(batch, self.rng, augment)
            return preprocess_faces(batch, spec), self.eye[labels[idx]]

        def on_epoch_end(self) -> None:
            if augment is not None:
                self.order = self.rng.permutation(len(labels))

    return FaceSequence()


def predict_batches(model, images: np.ndarray, spec: InputSpec, batch_size: int = 256) -> np.ndarray:
    """Run a Keras model over uint8 faces in batches, through the shared preprocessing."""
    outs = [
        np.asarray(model(preprocess_faces(images[i : i + batch_size], spec), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
