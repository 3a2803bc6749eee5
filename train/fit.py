"""Fitting a CNN with its in-network head: build (or transfer), compile, train with resumable checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgefer.runtime.datasets import FaceDataset
from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.preprocess import InputSpec

if TYPE_CHECKING:
    from .config import TrainConfig

log = logging.getLogger(__name__)


def network_head(head: str) -> str:
    """The head trained inside the CNN: the SVM top for ``svm-top``, softmax for everything else."""
    return "svm-top" if head == "svm-top" else "softmax"


def transfer_model(path: str | Path, num_classes: int, dropout: float, head: str, spec: InputSpec | None = None):
    """``--init-from``: a trained model's extractor (folded or not) with a fresh head, for fine-tuning.

    With ``spec`` of another input size than the source's (a 48-pixel FER2013 model
    fine-tuned on 96-pixel KDEF faces), the extractor is re-applied to an input of
    that size, sharing the trained layers: convolutions and global pooling do not
    depend on the image size.
    """
    import keras

    from .model import FEATURES_LAYER, attach_head

    path = Path(path)
    src = load_init_model(path)
    try:
        feats = src.get_layer(FEATURES_LAYER).output
    except ValueError:
        raise ValueError(f"{path} has no {FEATURES_LAYER!r} layer; it was not written by `edgefer train`") from None
    inputs = src.input
    if spec is not None and tuple(src.input.shape[1:]) != (spec.height, spec.width, spec.channels):
        if tuple(src.input.shape[3:]) != (spec.channels,):
            raise ValueError(f"--init-from {path} takes {src.input.shape[3]}-channel input, this run "
                             f"{spec.channels}-channel faces")
        extractor = keras.Model(src.input, feats)
        inputs = keras.Input((spec.height, spec.width, spec.channels), name=src.input.name)
        resized = keras.models.clone_model(extractor, input_tensors=inputs, clone_function=lambda layer: layer)
        feats = resized.output
    model = attach_head(inputs, feats, num_classes, f"{src.name.removesuffix('_svm')}_ft", dropout, head)
    if path.suffix.lower() == ".onnx":
        from .onnx_import import freeze_batchnorm

        freeze_batchnorm(model)
    return model


def require_init_file(path: str | Path) -> Path:
    """``path`` if it is a file, else a ``FileNotFoundError`` saying what ``--init-from`` takes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--init-from {path}: no such file; give a trained run's cnn.keras or model.keras, "
                                "or an fp32 ONNX written by `edgefer convert` (its manifest beside it), e.g. "
                                "runtime/models/default_fp32.onnx")
    return path


def init_input_size(path: str | Path) -> int:
    """The face side the ``--init-from`` model takes: its manifest's for an ONNX, its input's for a Keras file."""
    path = require_init_file(path)
    manifest = Path(str(path) + ".json")
    if path.suffix.lower() == ".onnx" and manifest.is_file():
        return int(json.loads(manifest.read_text())["input"]["height"])
    if path.suffix.lower() == ".keras":
        side = _keras_input_side(path)
        if side is not None:
            return side
    return int(load_init_model(path).input.shape[1])


def _keras_input_side(path: Path) -> int | None:
    """A ``.keras`` file's input height read from its config (the model is loaded once, later, to train),
    or None where the config does not say it plainly (a subclassed or Sequential model)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "InputLayer":
                return int(layer["config"]["batch_shape"][1])
    except (KeyError, TypeError, ValueError, IndexError, zipfile.BadZipFile):
        pass
    return None


def load_init_model(path: str | Path):
    """The Keras model ``--init-from`` names: a ``cnn.keras`` / ``model.keras``, or an fp32 MobileNet ONNX."""
    import keras

    path = require_init_file(path)
    if path.suffix.lower() == ".onnx":
        from .onnx_import import keras_from_onnx

        return keras_from_onnx(path)
    return keras.models.load_model(path)


def model_builder(cfg: "TrainConfig", spec: InputSpec, model_name: str,
                  num_classes: int = len(EMOTIONS)) -> Callable[[], Any]:
    """A no-argument function building the run's (uncompiled) model with ``num_classes`` outputs."""
    from .model import build_model

    head = network_head(cfg.head)
    if cfg.init_from:
        return lambda: transfer_model(cfg.init_from, num_classes, cfg.dropout, head, spec)
    return lambda: build_model(model_name, spec, num_classes, cfg.alpha, cfg.weights, cfg.dropout,
                               cfg.bn_momentum, head, cfg.fc_width)


def compile_for_training(model, cfg: "TrainConfig", steps: int, epochs: int) -> None:
    """Compile ``model`` as ``edgefer train`` does: AdamW on a warm-up + cosine schedule over ``steps`` x ``epochs``,
    cross-entropy with label smoothing (squared hinge for the svm-top head). Keras picks XLA or not."""
    import keras

    warmup = min(steps * 2, steps * epochs // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.lr * 0.1, max(1, steps * epochs - warmup), alpha=0.01, warmup_target=cfg.lr, warmup_steps=max(1, warmup),
    )
    if network_head(cfg.head) == "svm-top":
        # Tang 2013: one-vs-rest L2-SVM objective (squared hinge; Keras maps one-hot 0/1 targets to -1/+1).
        loss = keras.losses.SquaredHinge()
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4), loss=loss, metrics=["accuracy"])


def fit_cnn(cfg: "TrainConfig", spec: InputSpec, train: FaceDataset, val: FaceDataset, out: Path,
            build: Callable[[], Any], epochs: int | None = None):
    """Train ``build()`` on ``train``, keep the best epoch on ``val`` in ``out/cnn.keras``; resumable."""
    import keras

    from .augment import AugmentConfig
    from .balance import balanced_class_weights
    from .data import make_sequence
    from .loop import EpochPosition, fit_epochs, uses_own_loop
    from .model import set_bn_momentum
    from .precision import cpu_bf16_note, use_precision

    if cfg.precision == "mixed_bfloat16" and (note := cpu_bf16_note()):
        log.warning(note)
    epochs = cfg.epochs if epochs is None else epochs
    if epochs == 0:
        return _reuse_trained(cfg, spec, best_path=out / "cnn.keras")
    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state_path = ckpt_dir / "state.json"
    last_path = ckpt_dir / "last.keras"
    partial_path = ckpt_dir / "partial.keras"
    best_path = out / "cnn.keras"
    k = len(train.label_names)
    steps = int(np.ceil(len(train) / cfg.batch_size))

    start_epoch, best_acc, resume_at = 0, -1.0, None
    state = json.loads(state_path.read_text()) if cfg.resume and state_path.exists() else None
    if state and state.get("precision", "float32") != cfg.precision:
        # The weights would carry over (float32 under both), but the run's record would then describe
        # only its last part.
        raise ValueError(f"{out} was started with --precision {state.get('precision', 'float32')}; resume it "
                         f"with that, or start a new run (another --out) with --precision {cfg.precision}")
    if state and state.get("partial") and not (uses_own_loop() and partial_path.exists()):
        log.warning("the checkpoint inside epoch %d is not used (%s): resuming from the last whole epoch",
                    state["partial"]["epoch"] + 1, "missing" if not partial_path.exists() else
                    f"the {keras.backend.backend()} backend trains with Keras' fit, whole epochs at a time")
        state.pop("partial")
    if state and (state.get("partial") or last_path.exists()):
        start_epoch, best_acc = int(state["epoch"]), float(state["best_val_accuracy"])
        if state.get("partial"):
            resume_at = EpochPosition(**state["partial"])
            model = keras.models.load_model(partial_path)  # the optimizer's state too, as below
            log.info("resuming from %s at epoch %d, step %d of %d (best val accuracy %.4f)", partial_path,
                     start_epoch, resume_at.step, steps, best_acc)
        else:
            model = keras.models.load_model(last_path)  # optimizer state (step, moments, schedule) included
            log.info("resuming from %s at epoch %d (best val accuracy %.4f)", last_path, start_epoch, best_acc)
        if state.get("epochs", epochs) != epochs:
            log.warning("resuming a run started for %d epochs with --epochs %d: the learning-rate schedule of "
                        "the first start is kept", state["epochs"], epochs)
        _trim_history(out / "history.csv", start_epoch)
    else:
        keras.utils.set_random_seed(cfg.seed)
        model = build()
        if cfg.init_from:
            set_bn_momentum(model, cfg.bn_momentum)
        compile_for_training(model, cfg, steps, epochs)
    # Before the first step, which traces the training function in the layers' compute dtypes.
    use_precision(model, cfg.precision)
    if start_epoch >= epochs:
        return _load_best(best_path)

    def write_state(epoch: int, **extra: Any) -> None:
        # The keys a resume reads (above); ``partial`` names a step inside ``epoch``.
        _write_state(state_path, {"epoch": epoch, "best_val_accuracy": best_acc, "epochs": epochs,
                                  "precision": cfg.precision, **extra})

    class Checkpoint(keras.callbacks.Callback):
        """Keep the best epoch (validation accuracy) and a resumable last state."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            # Each file is written aside and renamed into place, the state last: a run killed at any
            # moment resumes from a complete epoch or from the last checkpoint inside one (save_partial).
            nonlocal best_acc
            acc = float((logs or {}).get("val_accuracy", 0.0))
            if acc > best_acc:
                best_acc = acc
                _save_atomic(self.model, best_path)
            _save_atomic(self.model, last_path)
            write_state(epoch + 1)
            partial_path.unlink(missing_ok=True)  # after the commit: until then a resume may still need it

    def save_partial(position: EpochPosition) -> None:
        # Inside an epoch (own loop, every --checkpoint-minutes): the model and its optimizer, then the state
        # naming the step; the last whole epoch stays in last.keras, so a kill at any moment leaves one of them.
        _save_atomic(model, partial_path)
        write_state(position.epoch, partial=dataclasses.asdict(position))

    augment = None
    if cfg.augment:
        augment = AugmentConfig.parse(cfg.augment_config) if cfg.augment_config else AugmentConfig()
    weights = balanced_class_weights(train.labels, k) if cfg.balance == "weights" else None
    targets = None
    if cfg.teacher:
        from .distill import distillation_targets, load_teachers

        targets = distillation_targets(load_teachers(cfg.teacher, train.label_names), train.images, train.labels,
                                       cfg.distill_weight, cfg.distill_temperature, ckpt_dir / "teacher.npz")
    train_seq = make_sequence(train.images, train.labels, spec, k, cfg.batch_size, augment, cfg.seed,
                              class_weights=weights, balanced=cfg.balance == "sampling", first_epoch=start_epoch,
                              workers=cfg.workers, mixup=cfg.mixup, targets=targets)
    val_seq = make_sequence(val.images, val.labels, spec, k, 256, None, workers=cfg.workers, shuffle=False)
    before_validation = None
    if cfg.precise_bn and not uses_own_loop():
        log.warning("--precise-bn needs TensorFlow's epoch loop (the %s backend trains with Keras' fit, which "
                    "validates with no hook before it): the moving averages are kept", keras.backend.backend())
    elif cfg.precise_bn:
        from .precise_bn import recompute_batchnorm

        def before_validation(epoch: int) -> None:
            # The epoch's own augmented batches (the sequence reshuffles only after the epoch ends).
            used = recompute_batchnorm(model, (train_seq[i][0] for i in range(min(cfg.precise_bn, len(train_seq)))))
            log.info("epoch %d: BatchNorm statistics recomputed from %d training batches", epoch + 1, used)
    to_file = not sys.stdout.isatty()  # Keras then prints one line an epoch: the progress callback adds more
    # The history row first, then the checkpoint: the state file is the commit point.
    fit_epochs(model, train_seq, val_seq, epochs, start_epoch,
               [keras.callbacks.CSVLogger(str(out / "history.csv"), append=start_epoch > 0), Checkpoint(),
                *([progress_callback(len(train_seq), epochs)] if to_file else [])],
               verbose=2 if to_file else 1, resume_at=resume_at, save=save_partial,
               save_every_s=cfg.checkpoint_minutes * 60 if cfg.checkpoint_minutes > 0 and uses_own_loop() else None,
               before_validation=before_validation)
    return _load_best(best_path)


def _load_best(best_path: Path):
    """The run's best epoch, as float32 throughout: a mixed-precision run's ``cnn.keras`` is rewritten so
    that the SVM fit, conversion and anyone loading it later see float32 layers (the weights are unchanged)."""
    import keras

    from .precision import precision_of, use_precision

    model = keras.models.load_model(best_path)
    if precision_of(model) != "float32":
        use_precision(model, "float32")
        _save_atomic(model, best_path)
    return model


def progress_callback(steps: int, epochs: int, parts: int = 10, min_gap_s: float = 30.0):
    """A log line at each tenth of an epoch, for a run whose output goes to a file (``nohup``): Keras then
    prints one line an epoch, and a CPU epoch of VGG16 lasts most of an hour. A tenth that comes less than
    ``min_gap_s`` after the epoch's start or the last line is skipped: a 2-second CK+ epoch needs no more
    than Keras' own line (150 epochs of 10 folds would otherwise log 13,500 lines)."""
    import keras

    marks = {max(1, round(steps * i / parts)) for i in range(1, parts)} - {steps}

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch, self.start, self.first = epoch, time.monotonic(), None
            self.last = self.start

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            done, now = batch + 1, time.monotonic()
            if self.first is None:  # the first step (of a start or a resume) also traces the graph:
                self.first = (done, now)  # the rate is taken after it
            if done not in marks or now - self.last < min_gap_s:
                return
            self.last = now
            since, then = self.first
            rate = (now - then) / (done - since) if done > since else now - self.start
            scores = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k in ("loss", "accuracy"))
            log.info("epoch %d/%d: %d/%d steps (%s), %.1f min in, about %.1f min left in the epoch",
                     self.epoch + 1, epochs, done, steps, scores, (now - self.start) / 60, rate * (steps - done) / 60)

    return Progress()


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _save_atomic(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _trim_history(history: Path, start_epoch: int) -> None:
    """Drop rows of epochs at or after ``start_epoch`` (an epoch logged but not checkpointed is redone)."""
    if not history.is_file():
        return
    lines = history.read_text().splitlines(keepends=True)
    if not lines:
        return
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0].strip().isdigit()
                         and int(line.split(",", 1)[0]) < start_epoch]
    if len(kept) != len(lines):
        log.info("history.csv: %d row(s) of epochs not checkpointed before the interruption dropped",
                 len(lines) - len(kept))
        history.write_text("".join(kept))


def _reuse_trained(cfg: "TrainConfig", spec: InputSpec, best_path: Path):
    """``--epochs 0 --init-from cnn.keras``: no training, the given CNN as it is (to fit other heads on it)."""
    from .model import SOFTMAX_LAYER, SVM_LAYER

    if not cfg.init_from:
        raise ValueError("--epochs 0 needs --init-from: a trained cnn.keras whose extractor the new head uses")
    model = load_init_model(cfg.init_from)
    size = tuple(model.input.shape[1:3])
    if size != (spec.height, spec.width):
        # Reused as it is, the model keeps its own input; a run at another size would feed it faces it cannot take.
        raise ValueError(f"--epochs 0 reuses {cfg.init_from} as it is, and it takes {size[0]}x{size[1]} faces, not "
                         f"{spec.height}x{spec.width}; pass --input-size {size[0]}, or train 1+ epochs to re-apply "
                         "it at another size")
    wanted = SVM_LAYER if network_head(cfg.head) == "svm-top" else SOFTMAX_LAYER
    if model.layers[-1].name != wanted:
        raise ValueError(f"--epochs 0 reuses {cfg.init_from} as it is, but its last layer is "
                         f"{model.layers[-1].name!r}, not {wanted!r}; pass the run's cnn.keras or train for 1+ epochs")
    best_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(best_path)
    return model


def fit_hybrid(cfg: "TrainConfig", spec: InputSpec, train: FaceDataset, val: FaceDataset, out: Path):
    """Train (or load ``cfg.hybrid_parts``) MobileNet and VGG16, then the projection + head on both, frozen.

    Returns ``(hybrid, parts)``; the parts live in ``out/mobilenet`` and ``out/vgg16``.
    """
    import dataclasses

    from .hybrid import PARTS, build_hybrid

    parts = []
    if cfg.hybrid_parts:
        if len(cfg.hybrid_parts) != 2:
            raise ValueError("--hybrid-parts takes two trained models: the MobileNet one (cnn.keras, or an fp32 "
                             "ONNX from `edgefer convert`), then the VGG16 one (cnn.keras)")
        for path in cfg.hybrid_parts:
            if not Path(path).is_file():
                raise FileNotFoundError(f"hybrid part {path} does not exist")
            parts.append(load_init_model(path))
    else:
        part_cfg = dataclasses.replace(cfg, head="softmax", init_from=None)
        for name in PARTS:
            log.info("hybrid: training the %s part", name)
            parts.append(fit_cnn(part_cfg, spec, train, val, out / name,
                                 model_builder(part_cfg, spec, name, len(train.label_names))))
    head = network_head(cfg.head)
    def build():
        return build_hybrid(parts[0], parts[1], len(train.label_names), cfg.projection, cfg.dropout, head)

    log.info("hybrid: training the %d-wide projection and the %s head on the frozen parts", cfg.projection, head)
    return fit_cnn(cfg, spec, train, val, out, build, cfg.hybrid_head_epochs), parts
