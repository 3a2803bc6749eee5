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
