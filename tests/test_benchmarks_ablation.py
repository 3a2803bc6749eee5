"""The ablation grid's plan: every row is a valid `edgefer train` run, a teacher before its student."""

from __future__ import annotations

from pathlib import Path

from benchmarks.ablation import ROWS, main, train_command


def test_every_row_is_a_valid_training_run(tmp_path):
    from edgefer.cli import build_parser
    from edgefer.train.augment import AugmentConfig

    parser = build_parser()
    seen = set()
    for name in ROWS:
        cmd = train_command(name, "fer", tmp_path)
        args = parser.parse_args(cmd[3:])  # after `python -m edgefer`
        assert args.resume and args.out == str(tmp_path / name)
        if args.augment_config:
            AugmentConfig.parse(args.augment_config)
        if args.teacher:  # the teacher is a row trained before its student
            teacher_row = Path(args.teacher).parent.name
            assert list(ROWS).index(teacher_row) < list(ROWS).index(name)
            assert args.teacher == str(tmp_path / teacher_row / "cnn.keras")
        seen.add((args.input_size, args.epochs, args.alpha, args.mixup, args.label_smoothing, args.augment_config,
                  tuple(args.add_faces), args.model, args.head, args.teacher))
    assert len(seen) == len(ROWS), "two rows train the same thing"


def test_list_and_dry_run_print_the_plan(tmp_path, capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ROWS)
    assert main(["--dry-run", "--out", str(tmp_path), "--rows", "base,48px", "--peer-python", "/x/python"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("edgefer train") == 2 and plan.count("edgefer convert") == 2
    assert "eval-cross" in plan and "--peer-python /x/python" in plan and not list(Path(tmp_path).iterdir())
    assert main(["--rows", "nope"]) == 2


_FAKE_RUN = """
import json, pathlib, sys, time
folder, code = pathlib.Path(sys.argv[1]), int(sys.argv[2])
start = time.time()
time.sleep(0.6)
if code == 0:
    (folder / "meta.json").write_text(json.dumps({"start": start, "end": time.time()}))
sys.exit(code)
"""


def _fake_rows(monkeypatch, failing: set[str]):
    import sys

    import benchmarks.ablation as ablation

    def command(name, data, out, extra=(), kdef="", ckplus=""):
        return [sys.executable, "-c", _FAKE_RUN, str(out / name), "3" if name in failing else "0"]

    monkeypatch.setattr(ablation, "train_command", command)
    return ablation


def test_rows_train_side_by_side_and_a_student_waits_for_its_teacher(tmp_path, monkeypatch):
    import json

    ablation = _fake_rows(monkeypatch, failing=set())
    rows = ["base", "48px", "teacher-vgg16", "distilled-from-vgg16"]
    assert ablation.train_rows(rows, "fer", tmp_path, [], False, "k", "c", parallel=3, poll_s=0.05) == []
    t = {name: json.loads((tmp_path / name / "meta.json").read_text()) for name in rows}
    assert t["base"]["start"] < t["48px"]["end"] and t["48px"]["start"] < t["base"]["end"]  # side by side
    assert t["distilled-from-vgg16"]["start"] >= t["teacher-vgg16"]["end"]  # the teacher first
    assert all((tmp_path / name / "train.log").is_file() for name in rows)


def test_a_failed_row_stops_only_itself_and_its_students(tmp_path, monkeypatch, capsys):
    ablation = _fake_rows(monkeypatch, failing={"teacher-vgg16"})
    rows = ["base", "teacher-vgg16", "distilled-from-vgg16"]
    failed = ablation.train_rows(rows, "fer", tmp_path, [], False, "k", "c", parallel=1, poll_s=0.05)
    assert failed == ["teacher-vgg16", "distilled-from-vgg16"]
    assert (tmp_path / "base" / "meta.json").is_file() and not (tmp_path / "distilled-from-vgg16").exists()
    assert "teacher-vgg16: FAILED (exit 3)" in capsys.readouterr().out
    import pytest

    with pytest.raises(SystemExit, match="needs row teacher-vgg16"):
        ablation.train_rows(["distilled-from-vgg16"], "fer", tmp_path / "other", [], False, "k", "c")
