"""The committed benchmark results describe the models shipped now (a retrained model makes them stale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefer.runtime.manifest import sha256_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))


def _measured_models(result: dict) -> list[tuple[str, str | None]]:
    """(model path, recorded sha256) of every measurement in a latency, ops, accuracy or cross-dataset result."""
    entries = [*result.get("runs", []), *result.get("evaluations", []), *result.get("models", [])]
    if "model" in result:
        entries.append(result)
    return [(e["model"], e.get("sha256")) for e in entries if "model" in e]


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_result_names_its_command_and_measures_the_shipped_model(path):
    result = json.loads(path.read_text())
    assert result.get("command", "").startswith(("python benchmarks/", "edgefer ")), \
        f"{path.name} does not say how to regenerate it"
    for model, sha in _measured_models(result):
        shipped = ROOT / "runtime" / "models" / Path(model).name
        if "runtime/models/" not in model or not shipped.exists():
            continue  # a user's own model: nothing shipped to compare with
        assert sha is not None, f"{path.name}: the run of {Path(model).name} records no sha256"
        assert sha == sha256_of(shipped), (
            f"{path.name} measured another {shipped.name} than the one shipped: regenerate it with its command")


@pytest.mark.parametrize("doc", ["README.md", "docs/benchmarks.md", "devices/expected-performance.md"])
def test_versus_fer_table_is_the_one_the_committed_results_give(doc):
    from benchmarks import versus
    from benchmarks.compare import load_results

    text = (ROOT / doc).read_text()
    assert versus.MD_BEGIN in text and versus.MD_END in text, f"{doc} lost its versus-table markers"
    shown = text.split(versus.MD_BEGIN, 1)[1].split(versus.MD_END, 1)[0].strip()
    assert shown == versus.table(load_results(versus.COMMITTED)), (
        f"{doc}'s table differs from benchmarks/results: run python benchmarks/versus.py --markdown {doc}")


@pytest.mark.parametrize("doc, blocks", [("README.md", ("accuracy-table", "cross-table")),
                                         ("docs/training.md", ("cross-table-all",))])
def test_accuracy_tables_are_the_ones_the_committed_results_give(doc, blocks):
    from benchmarks import accuracy_tables

    text = (ROOT / doc).read_text()
    written = accuracy_tables.tables()
    for name in blocks:
        begin, end = accuracy_tables.markers(name)
        assert begin in text and end in text, f"{doc} lost its {name} markers"
        shown = text.split(begin, 1)[1].split(end, 1)[0].strip()
        assert shown == written[name], (
            f"{doc}'s {name} differs from benchmarks/results: run python benchmarks/accuracy_tables.py --markdown {doc}")
    # The PublicTest table's first row names the shipped model as its manifest describes it.
    assert "MobileNet v1" in written["accuracy-table"].splitlines()[2]


def test_accuracy_tables_refuse_a_file_without_markers(tmp_path, capsys):
    from benchmarks import accuracy_tables

    page = tmp_path / "page.md"
    page.write_text("# no tables here\n")
    assert accuracy_tables.main(["--markdown", str(page)]) == 2
    assert "has none of the markers" in capsys.readouterr().err
    assert page.read_text() == "# no tables here\n"


def test_versus_table_refuses_results_without_a_peer(tmp_path):
    from benchmarks import versus

    bare = json.loads(versus.COMMITTED[0].read_text())
    for run in bare["runs"]:
        run.pop("versus_peer")
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(bare))
    assert versus.main([str(path)]) == 2


def test_measured_table_of_the_device_notes_is_the_compare_of_the_committed_runs():
    from benchmarks.compare import load_results, markdown_table
    from benchmarks.latency import COMPARE_BEGIN, COMPARE_END

    text = (ROOT / "devices" / "expected-performance.md").read_text()
    shown = text.split(COMPARE_BEGIN, 1)[1].split(COMPARE_END, 1)[0].strip()
    names = ("x86-2core-haar-vs-fer.json", "x86-2core-haar-vs-fer-woman2.json", "x86-2core-litert-yunet-vs-fer.json",
             "x86-2core-litert-1thread.json")
    assert shown == markdown_table(load_results([ROOT / "benchmarks" / "results" / n for n in names])), (
        "devices/expected-performance.md's measured table differs from its JSON: rerun the --compare command above it")


def test_versus_table_labels_how_often_a_run_detects():
    from benchmarks import versus

    run = json.loads(versus.COMMITTED[0].read_text())["runs"][0]
    assert versus.label(run) == "litert int8, Haar every 6th frame (default)"
    run["pipeline"]["tracking"]["detect_every"] = 2
    assert versus.label(run) == "litert int8, Haar every 2nd frame"
    run["pipeline"]["tracking"]["detect_every"] = 1
    assert versus.label(run) == "litert int8, Haar every frame"


def test_versus_table_labels_a_run_without_tracking():
    from benchmarks import versus

    run = json.loads(versus.COMMITTED[0].read_text())["runs"][0]
    run["pipeline"]["tracking"] = None
    assert versus.label(run) == "litert int8, Haar every frame"
