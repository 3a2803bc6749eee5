"""The README's results table, built only from committed JSON under ``results/``.

``python -m edgefer.train.results_table`` reads every ``results/**/meta.json``
(written by ``edgefer train`` or ``edgefer baseline``; k-fold runs count once,
their ``fold_NN`` folders are skipped) and ``results/papers.json`` (the papers'
published figures, labelled as such), and prints a markdown table; ``--write
PATH`` also saves it. INT8 size comes from a ``*.conversion.json`` (written by
``edgefer convert``) or an ``int8_size_bytes`` key beside the ``meta.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

from .config import TrainConfig

DATASET_NAMES = {"kdef": "KDEF", "ckplus": "CK+", "ckplus48": "CK+ (48x48)", "jaffe": "JAFFE", "rafdb": "RAF-DB"}
PROTOCOL_NAMES = {
    "published": "published random split", "subject": "subject-independent", "kfold": "subject-wise k-fold",
    "official": "official test", "given": "validation",
}
HEAD_NAMES = {"softmax": "softmax", "svm_top": "SVM top (squared hinge)", "svm_folded": "RBF SVM, RFF fold"}
KERNEL_NAMES = {"linear": "linear", "rbf": "RBF", "poly": "polynomial"}
_FOLD_DIR = re.compile(r"^fold_\d+$")


def _dataset(meta: dict[str, Any]) -> tuple[str, str]:
    info = meta.get("dataset") or {}
    layout, protocol = info.get("layout", "folders"), info.get("protocol", "given")
    training = meta.get("training", {})
    if layout == "folders":
        root = str(training.get("dataset", ""))
        name = "FER2013" if "fer2013" in root.lower() else Path(root.rstrip("/")).name or "class folders"
        if protocol == "given":
            val = str(training.get("validation", ""))
            shown = "PublicTest (val)" if name == "FER2013" and "(val)" in val else "validation"
            return name, shown
    else:
        name = DATASET_NAMES.get(layout, layout)
    shown = PROTOCOL_NAMES.get(protocol, protocol)
    if protocol == "kfold" and "kfold" in meta:
        shown = f"subject-wise {meta['kfold']['folds']}-fold"
    if layout == "ckplus48":
        present = len(meta.get("labels") or [])
        kept = "contempt" in (meta.get("labels") or [])
        shown += (f", 8-class (contempt kept; {present} present, no neutral)" if kept
                  else f", 7-class (contempt dropped; {present} present, no neutral)")
    return name, shown


def _head_name(key: str, meta: dict[str, Any]) -> str:
    if key.endswith("_flip"):  # the same head scored with test-time flip, as the runtime classifies
        return f"{_head_name(key.removesuffix('_flip'), meta)}, test-time flip"
    if key == "svm":
        kind = (meta.get("svm") or {}).get("kind", "linear")
        return "RBF SVM (exact)" if kind == "rbf" else f"{kind} SVM"
    if key.startswith("svc_"):
        return f"{KERNEL_NAMES.get(key[4:], key[4:])} SVC (grid search)"
    return HEAD_NAMES.get(key, key)


def _int8_size(folder: Path, meta: dict[str, Any]) -> int | None:
    if meta.get("int8_size_bytes"):
        return int(meta["int8_size_bytes"])
    for report in sorted(folder.glob("*.conversion.json")):
        for art in json.loads(report.read_text()).get("artifacts", []):
            if art.get("format") == "tflite" and art.get("precision") == "int8":
                return int(art["size_bytes"])
    return None


def _model_name(meta: dict[str, Any]) -> str:
    arch = meta.get("architecture", {})
    name = str(arch.get("name", "?"))
    alpha = arch.get("alpha")
    if alpha not in (None, 1.0):  # MobileNet's width multiplier, the custom CNNs' width (--alpha)
        name += f" a{alpha:g}" if name == "mobilenet_v1" else f" width {alpha:g}"
    size = meta.get("input", {}).get("height")
    name = f"{name} {size}px" if size else name
    config = meta.get("training", {}).get("config", {})  # two runs of one model may differ only here
    if config.get("hybrid_head_epochs") is not None and str(arch.get("name", "")).startswith("hybrid"):
        # A hybrid's --epochs train its parts; with --hybrid-parts (trained runs) only its head trains.
        head = f"head {config['hybrid_head_epochs']} epochs"
        name += (f", two trained parts frozen, {head}" if config.get("hybrid_parts")
                 else f", parts {config.get('epochs')} epochs each, {head}")
    elif arch.get("init_from"):  # from another run's extractor; runs that start from one differ in their epochs
        epochs = config.get("epochs")
        name += (", fine-tuned" if epochs is None else ", extractor reused (0 epochs)" if epochs == 0
                 else f", fine-tuned {epochs} epochs")
    elif config.get("epochs"):  # from scratch: one recipe over 40 or 80 epochs is two models
        name += f", {config['epochs']} epochs"
    if config.get("augment_config"):
        name += ", stronger augmentation"
    balance = config.get("balance")  # like label smoothing below: runs older than the option record none
    if balance not in (None, TrainConfig.balance):
        name += ", class-balanced " + ("loss weights" if balance == "weights" else balance)
    smoothing = config.get("label_smoothing")
    if smoothing is not None and smoothing != TrainConfig.label_smoothing:
        name += ", no label smoothing" if smoothing == 0 else f", label smoothing {smoothing:g}"
    if config.get("mixup"):
        name += f", mixup {config['mixup']:g}"
    if config.get("precise_bn"):
        name += ", precise BN"
    if config.get("precision", TrainConfig.precision) != TrainConfig.precision:
        name += ", bfloat16 compute" if config["precision"] == "mixed_bfloat16" else f", {config['precision']}"
    added = [DATASET_NAMES.get(text.partition("=")[0].strip().lower(), text) for text in config.get("add_faces") or []]
    if added:
        name += f", + {' and '.join(added)} people"
    teacher = meta.get("training", {}).get("distillation")
    if teacher:
        name += f", distilled from {teacher.get('teacher_architecture') or 'a teacher'}"
    return name


def rows_from_meta(path: Path) -> list[dict[str, Any]]:
    """One row per head measured on the run's reported split (test when it has one, else validation)."""
    meta = json.loads(path.read_text())
    metrics = meta.get("metrics", {})
    split = "test" if any(k.startswith("test_") for k in metrics) else "val"
    dataset, protocol = _dataset(meta)
    rows = []
    for key, value in metrics.items():
        if not key.startswith(split + "_") or not isinstance(value, dict) or key.endswith("_points"):
            continue
        rows.append({
            "dataset": dataset, "protocol": protocol, "model": _model_name(meta),
            "head": _head_name(key[len(split) + 1 :], meta), "accuracy": value["accuracy"],
            "accuracy_std": value.get("accuracy_std"), "macro_f1": value.get("macro_f1"),
            "accuracy_range": ((value["accuracy_min"], value["accuracy_max"]) if "accuracy_min" in value else None),
            "params": meta.get("architecture", {}).get("params"), "int8_bytes": _int8_size(path.parent, meta),
            "source": str(path),
        })
    return rows


def collect(results: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(our rows, the papers' rows) from a results folder."""
    ours: list[dict[str, Any]] = []
    for meta in sorted(results.rglob("meta.json")):
        if _FOLD_DIR.match(meta.parent.name):
            continue
        ours.extend(rows_from_meta(meta))
    papers_file = results / "papers.json"
    papers = json.loads(papers_file.read_text())["rows"] if papers_file.is_file() else []
    return ours, papers


def _pct(value: float | None, std: float | None = None, span: Sequence[float] | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value * 100:.2f} ± {std * 100:.2f}" if std else f"{value * 100:.2f}"
    return f"{text} (folds {span[0] * 100:.1f}–{span[1] * 100:.1f})" if span else text


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _params(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def render(ours: Sequence[dict[str, Any]], papers: Sequence[dict[str, Any]]) -> str:
    """A markdown table: our measured rows, each dataset followed by the papers' published rows for it."""
    header = ("| dataset | protocol | model | head | accuracy % | macro-F1 % | params | INT8 size | source |\n"
              "|---|---|---|---|---:|---:|---:|---:|---|")
    lines = [header]
    datasets = list(dict.fromkeys([r["dataset"] for r in ours] + [p["dataset"] for p in papers]))
    for name in datasets:
        mine = sorted((r for r in ours if r["dataset"] == name), key=lambda r: (r["protocol"], r["model"], r["head"]))
        for r in mine:
            lines.append(f"| {r['dataset']} | {r['protocol']} | {r['model']} | {r['head']} | "
                         f"{_pct(r['accuracy'], r['accuracy_std'], r.get('accuracy_range'))} | {_pct(r['macro_f1'])} | {_params(r['params'])} | "
                         f"{_size(r['int8_bytes'])} | `{r['source']}` |")
        for p in (p for p in papers if p["dataset"] == name):
            lines.append(f"| {p['dataset']} | {p['protocol']} | {p['model']} | {p['head']} | "
                         f"*{_pct(p['accuracy'])}* | *{_pct(p.get('macro_f1'))}* | — | — | published: {p['source']} |")
    note = ("Rows marked *published* are the papers' own figures, not measured here. "
            "Ours are measured on the split in the protocol column (test where the protocol has one, "
            "otherwise validation); nothing was tuned on a test split. k-fold rows give the mean ± standard "
            "deviation over the folds and the lowest and highest fold.")
    return "\n".join(lines) + "\n\n" + note + "\n"


README_BEGIN = "<!-- results-table:begin (python -m edgefer.train.results_table --readme README.md) -->"
README_END = "<!-- results-table:end -->"


def splice_into_readme(readme: Path, table: str, begin: str = README_BEGIN, end: str = README_END,
                       what: str = "results-table") -> None:
    """Replace the README's block between the ``begin`` and ``end`` marker lines (``what`` markers) with ``table``."""
    text = readme.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{readme} has no {what} markers: add a line {begin} and a line {end} where the table goes")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{table.rstrip()}\n{end}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgefer.train.results_table", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results", help="folder of committed results (default: results)")
    parser.add_argument("--write", default=None, help="also write the markdown here (e.g. results/RESULTS.md)")
    parser.add_argument("--readme", default=None, help="also replace the table between the markers in this README")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        parser.error(f"results folder {results} does not exist; run from the repository root or pass --results")
    ours, papers = collect(results)
    table = render(ours, papers)
    if args.write:
        Path(args.write).write_text(table)
    if args.readme:
        try:
            splice_into_readme(Path(args.readme), table)
        except ValueError as exc:
            parser.error(str(exc))
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
