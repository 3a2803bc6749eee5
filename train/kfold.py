"""Aggregating subject-wise k-fold runs: per-fold metrics, their mean and spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np


def run_folds(run_one: Callable[[int, Path], dict[str, Any]], folds: int, out: Path,
              config: dict[str, Any], test_name: str) -> dict[str, Any]:
    """Call ``run_one(fold, folder)`` for each fold; write the mean (and per-fold) metrics to ``out/meta.json``."""
    out.mkdir(parents=True, exist_ok=True)
    metas = [run_one(i, out / f"fold_{i:02d}") for i in range(folds)]
    metrics: dict[str, Any] = {}
    for key, first in metas[0]["metrics"].items():
        if not isinstance(first, dict):
            continue
        accs = np.array([m["metrics"][key]["accuracy"] for m in metas])
        f1s = np.array([m["metrics"][key]["macro_f1"] for m in metas])
        metrics[key] = {"accuracy": float(accs.mean()), "accuracy_std": float(accs.std()),
                        "macro_f1": float(f1s.mean()), "samples": int(sum(m["metrics"][key]["samples"] for m in metas))}
    meta = {**metas[0], "metrics": metrics,
            "dataset": {**metas[0]["dataset"], "fold": None, "test": test_name},
            "kfold": {"folds": folds, "per_fold": [m["metrics"] for m in metas]}}
    meta["training"] = {**meta["training"], "config": config}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
