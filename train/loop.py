"""The epoch loop: a plain loop of ``train_on_batch`` calls on TensorFlow, Keras' ``fit`` on the other backends.

On TensorFlow, ``fit`` feeds every batch through ``tf.data``; on this project's 2-core CPU a 96-px
MobileNet step took 2.26 s that way and 1.54 s in a loop that augments the next batches in a thread pool
while ``train_on_batch`` runs the step (``python benchmarks/train_step.py``,
``benchmarks/results/x86-2core-train-step.json``). JAX and PyTorch keep ``fit``: there the loop is no
faster (JAX 5.37 against 5.15 s on the CPU, and it syncs every variable after each call), and the GPU
figures of ``train/README.md`` were measured with ``fit``. Both paths call the same Keras callbacks with
the same logs: the epoch's means of the training metrics, then the ``val_`` ones measured after it.

The loop can also stop and resume inside an epoch (:class:`EpochPosition`): a CPU epoch lasts 10 minutes
(MobileNet at 96 px) to 45 (VGG16), and a run killed at a session's end would otherwise redo all of it.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence


@dataclass
class EpochPosition:
    """A place inside an epoch: ``step`` steps of epoch ``epoch`` (0-based) done, with the running sums of
    the batch metrics over their ``faces`` (so the epoch's logged means count every step once)."""

    epoch: int
    step: int
    sums: dict[str, float] = field(default_factory=dict)
    faces: int = 0


def uses_own_loop() -> bool:
    """Whether :func:`fit_epochs` runs its own loop by default (TensorFlow), the one that can stop mid-epoch."""
    import keras

    return keras.backend.backend() == "tensorflow"


def fit_epochs(model, train_seq, val_seq, epochs: int, initial_epoch: int = 0, callbacks: Sequence[Any] = (),
               verbose: int = 1, own_loop: bool | None = None, resume_at: EpochPosition | None = None,
               save_every_s: float | None = None, save: Callable[[EpochPosition], None] | None = None,
               before_validation: Callable[[int], None] | None = None) -> None:
    """Train ``model`` on ``train_seq`` (a ``keras.utils.PyDataset`` that reshuffles in ``on_epoch_end``) from
    ``initial_epoch`` to ``epochs``, scoring ``val_seq`` after each epoch. ``own_loop`` None: the loop on
    TensorFlow, ``fit`` elsewhere. The loop prepares batches with the sequence's own ``workers`` threads,
    ``max_queue_size`` ahead, as ``fit`` does.

    Own loop only: ``save(position)`` is called inside an epoch once ``save_every_s`` seconds have passed
    since the epoch began or the last call (0: after every step; None: never), and ``resume_at`` (whose
    ``epoch`` must be ``initial_epoch``) starts the first epoch at its step with its metric sums;
    ``before_validation(epoch)`` runs after each epoch's last step, before ``val_seq`` is scored."""
    import keras

    own = uses_own_loop() if own_loop is None else own_loop
    if resume_at is not None and (not own or resume_at.epoch != initial_epoch):
        raise ValueError(f"resuming inside epoch {resume_at.epoch} needs the own loop and initial_epoch "
                         f"{resume_at.epoch} (got {'the own loop' if own else 'fit'}, {initial_epoch})")
    if not own:
        if before_validation is not None:
            raise ValueError("before_validation needs the own loop (Keras' fit validates with no hook before it)")
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
            first = resume_at.step if resume_at is not None and epoch == resume_at.epoch else 0
            means = _EpochMeans(resume_at.sums, resume_at.faces) if first else _EpochMeans()
            saved = time.monotonic()
            batches = _prefetched(train_seq, pool, depth=max(1, train_seq.max_queue_size), start=first)
            for step, batch in enumerate(batches, start=first):
                hooks.on_train_batch_begin(step)
                x, y, *weights = batch
                out = model.train_on_batch(x, y, sample_weight=weights[0] if weights else None, return_dict=True)
                hooks.on_train_batch_end(step, means.add(out, len(x)))
                if (save is not None and save_every_s is not None and step + 1 < steps
                        and time.monotonic() - saved >= save_every_s):
                    save(EpochPosition(epoch, step + 1, dict(means.sums), means.faces))
                    saved = time.monotonic()
            logs = means.result()
            if before_validation is not None:  # own loop only: fit validates inside, with no hook before it
                before_validation(epoch)
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

    def __init__(self, sums: dict[str, float] | None = None, faces: int = 0) -> None:
        self.sums: dict[str, float] = dict(sums or {})
        self.faces = faces

    def add(self, batch_logs: dict[str, Any], faces: int) -> dict[str, float]:
        for key, value in batch_logs.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * faces
        self.faces += faces
        return self.result()

    def result(self) -> dict[str, float]:
        return {key: total / max(1, self.faces) for key, total in self.sums.items()}


def _prefetched(seq, pool: ThreadPoolExecutor, depth: int, start: int = 0) -> Iterator[Any]:
    """``seq[start]``, ``seq[start + 1]``, ... in order, up to ``depth`` of them prepared ahead in ``pool``."""
    n = len(seq)
    ahead: deque[Future] = deque(pool.submit(seq.__getitem__, i) for i in range(start, min(start + depth, n)))
    for i in range(start, n):
        batch = ahead.popleft().result()
        if i + depth < n:  # queued before the step, so the pool works while the model trains
            ahead.append(pool.submit(seq.__getitem__, i + depth))
        yield batch
