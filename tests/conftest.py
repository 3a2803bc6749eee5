"""Shared fixtures: generated faces, a tiny trained model, and ../shared when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.cli import prefer_onednn
from edgefer.runtime.labels import EMOTIONS

# The training and conversion tests run TensorFlow in this process: give it the kernels `edgefer` asks for.
prefer_onednn()

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFER_SHARED", REPO.parent / "shared"))
MEDIA = SHARED / "media"
FER = SHARED / "datasets" / "fer2013"
KDEF = SHARED / "datasets" / "kdef" / "KDEF"


def need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not available: {path} does not exist (../shared is beside the repo only in CI/dev)")
    return path


@pytest.fixture
def media() -> Path:
    return need(MEDIA, "shared test media")


@pytest.fixture
def fer_root() -> Path:
    return need(FER, "the FER2013 dataset")


def synthetic_face(label: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A grey 'face' whose brightness and stripe angle depend on the class (separable on purpose)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = np.pi * label / len(EMOTIONS)
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / 10) + rng.uniform(0, 2 * np.pi))
    img = 30 + 30 * label + 25 * wave + rng.normal(0, 8, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_class_folders(root: Path, per_class: int, seed: int = 0, names: dict[str, str] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(EMOTIONS):
        folder = root / (names or {}).get(name, name)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{i:04d}.png"), synthetic_face(label, rng))
    return root


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """<root>/train and <root>/val class folders of generated faces."""
    root = tmp_path_factory.mktemp("synthetic")
    write_class_folders(root / "train", 40, seed=1)
    write_class_folders(root / "val", 12, seed=2)
    return root


@pytest.fixture(scope="session")
def tiny_run(synthetic_data, tmp_path_factory) -> Path:
    """A real (tiny) `edgefer train` run: MobileNet alpha 0.25 at 32x32 on generated faces."""
    from edgefer.train.trainer import TrainConfig, run_training

    out = tmp_path_factory.mktemp("tiny_run")
    run_training(TrainConfig(
        data=str(synthetic_data), out=str(out), input_size=32, alpha=0.25, epochs=6, batch_size=8,
        lr=3e-3, svm_c=[0.01, 0.1], svm_cv=2, augment=False, seed=0, bn_momentum=0.8,
    ))
    return out


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_run, synthetic_data) -> Path:
    """INT8 TFLite + fp32 ONNX converted from the tiny run (parity gate loosened for a 6-epoch toy)."""
    from edgefer.convert.run import run_conversion

    out = tiny_run / "artifacts"
    run_conversion(tiny_run / "model.keras", out, synthetic_data, synthetic_data, ["tflite", "onnx"],
                   name="tiny", num_calib=70, max_drop_points=100.0, min_agreement=0.0)
    return out
