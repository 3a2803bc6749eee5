"""The epoch loop: a plain loop of ``train_on_batch`` calls on TensorFlow, Keras' ``fit`` on the other backends.

On TensorFlow, ``fit`` feeds every batch through ``tf.data``; on this project's 2-core CPU a 96-px
MobileNet step took 2.26 s that way and 1.54 s in a loop that augments the next batches in a thread pool
while ``train_on_batch`` runs the step (``python benchmarks/train_step.py``,
``benchmarks/results/x86-2core-train-step.json``). JAX and PyTorch keep ``fit``: there the loop is no
faster (JAX 5.37 against 5.15 s on the CPU, and it syncs every variable after each call), and the GPU
figures of ``train/README.md`` were measured with ``fit``. Both paths call the same Keras callbacks with
the same logs: the epoch's means of the training metrics, then the ``val_`` ones measured after it.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, Sequence


def fit_epochs(model, train_seq, val_seq, epochs: int, initial_epoch: int = 0, callbacks: Sequence[Any] = (),
               verbose: int = 1, own_loop: bool | None = None) -> None:
    """Train ``model`` on ``train_seq`` (a ``keras.utils.PyDataset`` that reshuffles in ``on_epoch_end``) from
    ``initial_epoch`` to ``epochs``, scoring ``val_seq`` after each epoch. ``own_loop`` None: the loop on
    TensorFlow, ``fit`` elsewhere. The loop prepares batches with the sequence's own ``workers`` threads,
    ``max_queue_size`` ahead, as ``fit`` does."""
    import keras

    if not (keras.backend.backend() == "tensorflow" if own_loop is None else own_loop):
        model.fit(train_seq, validation_data=val_seq, epochs=epochs, initial_epoch=initial_epoch,
                  shuffle=False,  # the sequence shuffles itself, keyed by (seed, epoch): Keras' would not resume
                  callbacks=list(callbacks), verbose=verbose)
        return
    steps = len(train_seq)
    hooks = keras.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
                                         verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    hooks.on_train_begin()
    logs: dict[str, float] = {}
    with ThreadPoolExecutor(max(1, train_seq.workers)) as pool:
        for epoch in range(initial_epoch, epochs):
            hooks.on_epoch_begin(epoch)
            means = _EpochMeans()
            for step, batch in enumerate(_prefetched(train_seq, pool, depth=max(1, train_seq.max_queue_size))):
                hooks.on_train_batch_begin(step)
                x, y, *weights = batch
                out = model.train_on_batch(x, y, sample_weight=weights[0] if weights else None, return_dict=True)
                hooks.on_train_batch_end(step, means.add(out, len(x)))
            logs = means.result()
            val = model.evaluate(val_seq, verbose=0, return_dict=True)
            logs.update({f"val_{k}": float(v) for k, v in val.items()})
            hooks.on_epoch_end(epoch, logs)
            train_seq.on_epoch_end()
            if model.stop_training:
                break
    hooks.on_train_end(logs)


class _EpochMeans:
    """The epoch's running means of the batch metrics, as ``fit`` reports them: ``train_on_batch`` resets the
    metrics at each call, so each batch's value is weighted here by its number of faces, as Keras weights
    the loss and the (unweighted) compiled metrics."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.faces = 0

    def add(self, batch_logs: dict[str, Any], faces: int) -> dict[str, float]:
        for key, value in batch_logs.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * faces
        self.faces += faces
        return self.result()

    def result(self) -> dict[str, float]:
        return {key: total / max(1, self.faces) for key, total in self.sums.items()}


def _prefetched(seq, pool: ThreadPoolExecutor, depth: int) -> Iterator[Any]:
    """``seq[0]``, ``seq[1]``, ... in order, up to ``depth`` of them prepared ahead in ``pool``."""
    n = len(seq)
    ahead: deque[Future] = deque(pool.submit(seq.__getitem__, i) for i in range(min(depth, n)))
    for i in range(n):
        batch = ahead.popleft().result()
        if i + depth < n:  # queued before the step, so the pool works while the model trains
            ahead.append(pool.submit(seq.__getitem__, i + depth))
        yield batch
