"""Face packs: a research set's cropped faces in one ``.npz``, to train where its photos or the Haar cascade are not.

    edgefer pack kdef ../shared/datasets/kdef/KDEF --size 96 --out kdef-96.npz
    edgefer train --data ../shared/datasets/fer2013 --input-size 96 --add-faces kdef=kdef-96.npz ...
    edgefer train --dataset kdef --data kdef-96.npz --input-size 96 --protocol subject ...

A pack holds what the layout's loader returned (the faces at one size, labels, who each face is, the
official partition, the crop report) and the options it was loaded with. A run that names a pack
where it would name the dataset's folder gets the same faces, people and splits without running the
loader: on a GPU machine whose OpenCV has no Haar cascade (opencv-python 5 has none) or that lacks
the photos, and on any machine without the minute or two Haar takes over KDEF. The run's provenance
still names the dataset (``kdef``), so ``edgefer eval-cross`` on the real photos leaves out the
people the run trained on.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import Corpus

SCHEMA = "edgefer-face-pack/1"
SUFFIX = ".npz"


def is_pack(root: str | Path) -> bool:
    """Whether a dataset root names a face pack rather than a folder."""
    return Path(root).suffix.lower() == SUFFIX


def loader_options(loader: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Every option ``loader`` takes besides root, size and cropper, given or defaulted, as JSON values."""
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"{loader.__name__} takes no option {', '.join(unknown)}")
    chosen = {name: options.get(name, p.default) for name, p in params.items()
              if name not in ("root", "size", "cropper") and p.default is not inspect.Parameter.empty}
    return json.loads(json.dumps(chosen))  # tuples become lists, as they come back from the file


def check_out(out: str | Path) -> Path:
    """``out`` if it can name a pack (checked before minutes of cropping, not after)."""
    out = Path(out)
    if not is_pack(out):
        raise ValueError(f"a face pack's name ends in {SUFFIX}, not {out.name!r}")
    return out


def save_pack(corpus: Corpus, out: str | Path, layout: str, root: str | Path, size: tuple[int, int],
              options: dict[str, Any]) -> Path:
    """Write ``corpus`` (as ``layout``'s loader gave it from ``root`` at ``size`` with ``options``) to ``out``."""
    out = check_out(out)
    faces = corpus.faces
    meta = {"schema": SCHEMA, "layout": layout, "name": corpus.name, "root": str(root), "size": list(size),
            "options": options, "report": corpus.report, "label_names": list(faces.label_names)}
    arrays: dict[str, np.ndarray] = {
        "images": faces.images, "labels": faces.labels, "sources": np.asarray(faces.sources, dtype=str),
        "skipped": np.asarray(faces.skipped, dtype=str), "meta": np.asarray(json.dumps(meta)),
    }
    if corpus.subjects is not None:
        arrays["subjects"] = np.asarray(corpus.subjects, dtype=str)
    if corpus.partition is not None:
        arrays["partition"] = np.asarray(corpus.partition, dtype=str)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)
    return out


def load_pack(path: str | Path, layout: str, size: tuple[int, int], options: dict[str, Any]) -> Corpus:
    """The corpus in pack ``path``; refused unless it was made by ``layout`` at ``size`` with ``options``."""
    from edgefer.runtime.datasets import FaceDataset

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face pack {path} does not exist; make it where the photos are with "
                                f"edgefer pack {layout} ROOT --size {size[0]} --out {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a face pack (`edgefer pack` writes them): {exc}") from exc
    if meta.get("schema") != SCHEMA:
        raise ValueError(f"{path}: face pack schema {meta.get('schema')!r}, this edgefer reads {SCHEMA!r}")
    asked = {"layout": layout, "size": list(size), "options": options}
    made = {k: meta[k] for k in asked}
    if made != asked:
        diff = ", ".join(f"{k} {made[k]!r} (the run asks for {asked[k]!r})" for k in asked if made[k] != asked[k])
        raise ValueError(f"face pack {path} was made with {diff}; make one for this run with "
                         f"edgefer pack {layout} {meta['root']} --size {size[0]} ... --out NEW.npz")
    faces = FaceDataset(arrays["images"], arrays["labels"].astype(np.int64), arrays["sources"].tolist(),
                        arrays["skipped"].tolist(), tuple(meta["label_names"]))
    report = {**meta["report"], "face_pack": str(path)}
    return Corpus(meta["name"], faces, arrays.get("subjects"), arrays.get("partition"), report)
