"""Aggregating subject-wise k-fold runs: per-fold metrics, their mean and spread, and the pooled confusion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np


def pooled_confusions(folders: list[Path], keys: list[str], out: Path) -> dict[str, str]:
    """Sum each head's test confusion matrix over the folds into ``out/confusion_<key>.{json,png}``.

    Every face is tested in exactly one fold, so the pooled matrix covers the whole
    dataset once. Returns the JSON files written, by metric key.
    """
    from edgefer.runtime.metrics import classification_summary

    from .reports import save_confusion_png

    written = {}
    for key in keys:
        files = [f / f"confusion_{key}.json" for f in folders]
        if not all(p.is_file() for p in files):
            continue
        summaries = [json.loads(p.read_text()) for p in files]
        labels = summaries[0]["labels"]
        cm = sum(np.asarray(s["confusion_matrix"], np.int64) for s in summaries)
        y_true = np.repeat(np.arange(len(labels)), cm.sum(axis=1))
        y_pred = np.concatenate([np.repeat(np.arange(len(labels)), row) for row in cm])
        pooled = classification_summary(y_true, y_pred, labels)
        (out / f"confusion_{key}.json").write_text(json.dumps(pooled, indent=2) + "\n")
        save_confusion_png(pooled, out / f"confusion_{key}.png", f"{key}, pooled over {len(folders)} folds")
        written[key] = f"confusion_{key}.json"
    return written


def run_folds(run_one: Callable[[int, Path], dict[str, Any]], folds: int, out: Path,
              config: dict[str, Any], test_name: str) -> dict[str, Any]:
    """Call ``run_one(fold, folder)`` for each fold; write the mean (and per-fold) metrics to ``out/meta.json``.

    ``metrics[key]`` holds the mean accuracy over the folds, its standard deviation, the
    lowest and highest fold, and every fold's accuracy in fold order.
    """
    out.mkdir(parents=True, exist_ok=True)
    folders = [out / f"fold_{i:02d}" for i in range(folds)]
    metas = [run_one(i, folder) for i, folder in enumerate(folders)]
    metrics: dict[str, Any] = {}
    for key, first in metas[0]["metrics"].items():
        if not isinstance(first, dict):
            continue
        accs = np.array([m["metrics"][key]["accuracy"] for m in metas])
        f1s = np.array([m["metrics"][key]["macro_f1"] for m in metas])
        metrics[key] = {"accuracy": float(accs.mean()), "accuracy_std": float(accs.std()),
                        "accuracy_min": float(accs.min()), "accuracy_max": float(accs.max()),
                        "accuracy_per_fold": [round(float(a), 4) for a in accs],
                        "macro_f1": float(f1s.mean()), "samples": int(sum(m["metrics"][key]["samples"] for m in metas))}
    test_keys = [k for k in metrics if k.startswith("test_")]
    meta = {**metas[0], "metrics": metrics,
            "dataset": {**metas[0]["dataset"], "fold": None, "test": test_name},
            "kfold": {"folds": folds, "per_fold": [m["metrics"] for m in metas],
                      "test_subjects": [_test_subjects(f) for f in folders],
                      "pooled_confusion": pooled_confusions(folders, test_keys, out)},
            "figures": {}}
    meta["training"] = {**meta["training"], "config": config}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _test_subjects(folder: Path) -> list[str] | None:
    report = folder / "data_report.json"
    return json.loads(report.read_text()).get("test_subjects") if report.is_file() else None
