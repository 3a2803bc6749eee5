"""Write the train / val / test faces of a training run as class folders.

Research sets (KDEF, CK+, JAFFE, RAF-DB) are parsed, Haar-cropped and split inside
``edgefer train``; ``edgefer convert``, ``benchmarks/accuracy.py`` and ``edgefer eval`` read
class folders. This rebuilds a run's exact split from its ``meta.json`` (same loader,
protocol, fold and seed) and writes every face as a lossless PNG at the run's input size,
so an artifact is calibrated on that run's training faces and checked on its own test faces::

    python -m edgefer.train.export_split runs/kdef_hybrid96_published faces/kdef_published
    edgefer convert --model runs/kdef_hybrid96_published/model.keras --calib-data faces/kdef_published \\
        --val-data faces/kdef_published/test ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.preprocess import InputSpec


def export_run_faces(run: str | Path, out: str | Path, data: str | None = None) -> dict[str, int]:
    """Write ``out/{train,val,test}/<emotion>/<n>.png`` for the run in ``run``; returns faces per split.

    ``data`` overrides the dataset root recorded in the run (the same data moved elsewhere).
    """
    import cv2

    from .protocols import prepare_data
    from .config import TrainConfig

    meta_path = Path(run) / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} does not exist: pass a finished `edgefer train` run folder")
    meta = json.loads(meta_path.read_text())
    config = dict(meta["training"]["config"])
    if data is not None:
        config["data"] = data
    cfg = TrainConfig(**config)
    spec = InputSpec.from_dict(meta["input"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_data = prepare_data(cfg, spec, out)
    splits = {"train": run_data.train, "val": run_data.val}
    if run_data.test is not None:
        splits["test"] = run_data.test
    counts = {}
    for split, faces in splits.items():
        for label in EMOTIONS:
            (out / split / label).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(faces.images, faces.labels)):
            path = out / split / EMOTIONS[int(label)] / f"{i:05d}.png"
            if not cv2.imwrite(str(path), image):
                raise OSError(f"could not write {path}")
        counts[split] = len(faces)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgefer.train.export_split", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a finished `edgefer train` run folder (with meta.json)")
    parser.add_argument("out", help="folder to write train/, val/ and test/ class folders into")
    parser.add_argument("--data", default=None, help="dataset root, if it moved since the run")
    args = parser.parse_args(argv)
    try:
        counts = export_run_faces(args.run, args.out, args.data)
    except (FileNotFoundError, ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(", ".join(f"{split} {n}" for split, n in counts.items()) + f" faces written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
