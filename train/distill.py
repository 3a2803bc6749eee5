"""Knowledge distillation (``edgefer train --teacher``): a trained network's soft labels as training targets.

A larger network trained here (VGG16, the hybrid, a 96-px MobileNet), or several of them, is the
teacher; the run's model is the student. Each training face's target becomes

    (1 - weight) * one-hot label + weight * softmax(log p_teacher / T)

where ``p_teacher`` is the teacher's softmax on the face and its mirror image, averaged (its test-time
flip), and ``T`` the temperature that softens it (Hinton et al. 2015). Several teachers
(``--teacher a.keras,b.keras``) are one ensemble: ``p_teacher`` is the mean of their probabilities,
each network at its own input size. The student's own output stays
a plain softmax: the SVM fitted on its features and the runtime's calibration read it unchanged.

The teacher scores every training face once, before the first epoch, without augmentation
("offline" distillation): it is then one forward pass over the training set, whatever Keras backend
trains, not one teacher pass per student step. The student sees augmented faces against the
teacher's view of the clean face; flips, crops and noise keep the expression, so the target stays
right. Mixup blends the targets as it blends one-hot labels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefer.runtime.manifest import sha256_of
from edgefer.runtime.preprocess import InputSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Teacher:
    """A loaded teacher: its Keras model, the input it expects and what its run says of itself."""

    path: Path
    model: Any
    spec: InputSpec
    record: dict[str, Any] | None  # the teacher run's meta.json, when it sits beside the model
    sha256: str

    @property
    def architecture(self) -> str:
        record = self.record or {}
        return str(record.get("architecture", {}).get("name") or self.model.name)


def teacher_paths(teacher: str | Path) -> list[Path]:
    """The files of ``--teacher``: one path, or several separated by commas (an ensemble)."""
    paths = [Path(part.strip()) for part in str(teacher).split(",")]
    if any(not str(p) or str(p) == "." for p in paths):
        raise ValueError(f"--teacher {teacher!r} has an empty entry: give cnn.keras paths separated by commas")
    if len(set(paths)) != len(paths):
        raise ValueError(f"--teacher {teacher!r} names one file twice: each teacher counts once in the ensemble")
    return paths


def require_teacher_file(path: str | Path) -> Path:
    """``path`` if it is a Keras file, else an error saying what ``--teacher`` takes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--teacher {path}: no such file; give the cnn.keras of a finished `edgefer train` run")
    if path.suffix.lower() != ".keras":
        raise ValueError(f"--teacher {path} is not a Keras model; pass the cnn.keras of a finished `edgefer train` "
                         "run (artifacts have the SVM folded in: margins, not probabilities)")
    return path


def load_teacher(path: str | Path, labels: Sequence[str]) -> Teacher:
    """Load ``--teacher``: a run's ``cnn.keras`` (softmax head) whose classes are ``labels``, in that order.

    Raises ``ValueError`` naming what to pass instead for a model with another set of classes or a
    head without probabilities (a folded SVM's ``model.keras``).
    """
    import keras

    from .model import SOFTMAX_LAYER

    path = require_teacher_file(path)
    model = keras.models.load_model(path)
    if model.layers[-1].name != SOFTMAX_LAYER:
        raise ValueError(f"--teacher {path} ends in {model.layers[-1].name!r}, not the softmax head "
                         f"{SOFTMAX_LAYER!r}: its scores are not probabilities. Pass the run's cnn.keras "
                         "(model.keras has the SVM folded in)")
    classes = int(model.output.shape[-1])
    meta_path = path.parent / "meta.json"
    record = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    taught = (record or {}).get("labels")
    if classes != len(labels) or (taught is not None and list(taught) != list(labels)):
        raise ValueError(f"--teacher {path} predicts {taught or f'{classes} classes'}, this run trains "
                         f"{list(labels)}: a teacher must have the same classes in the same order")
    height, width, channels = (int(d) for d in model.input.shape[1:])
    recorded = (record or {}).get("input")
    spec = InputSpec(height, width, channels) if recorded is None else dataclasses.replace(
        InputSpec.from_dict(recorded), height=height, width=width, channels=channels)
    return Teacher(path, model, spec, record, sha256_of(path))


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row: ``T`` > 1 flattens, ``T`` = 1 returns ``p``."""
    if temperature <= 0:
        raise ValueError(f"distillation temperature must be > 0, got {temperature}")
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def load_teachers(teacher: str | Path, labels: Sequence[str]) -> list[Teacher]:
    """Every network of ``--teacher`` (:func:`teacher_paths`), each checked by :func:`load_teacher`."""
    return [load_teacher(path, labels) for path in teacher_paths(teacher)]


def teacher_probabilities(teacher: Teacher | Sequence[Teacher], images: np.ndarray,
                          batch_size: int = 64) -> np.ndarray:
    """The teacher's softmax on each uint8 face and on its mirror image, averaged; several teachers' averaged."""
    from .data import mirrored, predict_batches

    teachers = [teacher] if isinstance(teacher, Teacher) else list(teacher)
    each = [(predict_batches(one.model, images, one.spec, batch_size)
             + predict_batches(one.model, mirrored(images), one.spec, batch_size)) / 2 for one in teachers]
    return np.mean(each, axis=0).astype(np.float32)


def distillation_targets(teacher: Teacher | Sequence[Teacher], images: np.ndarray, labels: np.ndarray,
                         weight: float, temperature: float, cache: Path | None = None) -> np.ndarray:
    """Per-face training targets: the one-hot label blended with the teacher's softened probabilities.

    ``teacher``: one network or several (their probabilities averaged). ``cache`` (a ``.npz``) keeps
    the teacher's probabilities for a resumed run, keyed by the teachers' sha256 and the faces, so a
    restart does not score the training set again.
    """
    if not 0 < weight <= 1:
        raise ValueError(f"--distill-weight {weight} must be in (0, 1]: the share of the teacher in each target")
    teachers = [teacher] if isinstance(teacher, Teacher) else list(teacher)
    if not teachers:
        raise ValueError("distillation needs at least one teacher")
    shas = ",".join(t.sha256 for t in teachers)
    key = hashlib.sha256(shas.encode() + np.ascontiguousarray(images).tobytes()).hexdigest()
    probs = None
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            probs = stored["probabilities"]
    if probs is None:
        log.info("distillation: %s scores %d training faces and their mirror images",
                 " + ".join(f"{t.path} ({t.architecture})" for t in teachers), len(images))
        probs = teacher_probabilities(teachers, images)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.stem + ".partial.npz")
            np.savez(tmp, key=key, probabilities=probs)
            tmp.replace(cache)
    agree = float((probs.argmax(1) == labels).mean()) if len(labels) else 0.0
    log.info("distillation: the teacher agrees with %.2f %% of the training labels", agree * 100)
    one_hot = np.eye(probs.shape[1], dtype=np.float32)[labels]
    return ((1 - weight) * one_hot + weight * soften(probs, temperature)).astype(np.float32)


def _one_record(path: Path) -> dict[str, Any]:
    meta_path = path.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    val = {k: v["accuracy"] for k, v in meta.get("metrics", {}).items() if isinstance(v, dict) and "accuracy" in v}
    return {"teacher": str(path), "teacher_sha256": sha256_of(path),
            "teacher_architecture": meta.get("architecture", {}).get("name"),
            "teacher_input": meta.get("input"), "teacher_accuracy": val or None}


def record(teacher: str | Path, weight: float, temperature: float) -> dict[str, Any]:
    """What ``meta.json`` says of a distillation (``training.distillation``), read without loading the teacher.

    One teacher: its path, sha256, architecture, input and accuracy at the top level. Several: the
    same per teacher under ``teachers``, and their architectures joined by `` + `` at the top.
    """
    parts = [_one_record(path) for path in teacher_paths(teacher)]
    settings = {"weight": weight, "temperature": temperature, "teacher_views": "face and mirror image, averaged",
                "targets": "(1 - weight) * one-hot + weight * softmax(log p_teacher / temperature)"}
    if len(parts) == 1:
        return {**parts[0], **settings}
    return {"teacher": str(teacher), "teachers": parts,
            "teacher_architecture": " + ".join(str(p["teacher_architecture"] or "?") for p in parts),
            **settings, "ensemble": "the teachers' probabilities averaged, face by face"}
