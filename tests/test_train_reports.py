"""Report files (confusion JSON, ROC + AUC, curves, per-face bars) and the results table built from JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefer.runtime.labels import EMOTIONS
from edgefer.train.figures import one_vs_rest_roc, save_probability_bars, save_training_curves
from edgefer.train.results_table import collect, main, render

LABELS = list(EMOTIONS)


def test_roc_auc_is_one_for_perfect_scores_and_none_for_absent_classes():
    y = np.array([0, 1, 2, 3, 4, 5, 0, 1])
    scores = np.eye(7)[y]
    roc = one_vs_rest_roc(y, scores, LABELS)
    assert roc["classes"]["angry"]["auc"] == 1.0
    assert roc["classes"]["surprise"]["auc"] is None
    assert roc["macro_auc"] == 1.0
    flipped = one_vs_rest_roc(y, -scores, LABELS)
    assert flipped["classes"]["angry"]["auc"] == 0.0


def test_evaluate_head_writes_confusion_and_roc_files(tmp_path):
    from edgefer.train.reports import evaluate_head

    rng = np.random.default_rng(0)
    y = np.arange(70) % 7
    scores = np.eye(7)[y] + rng.normal(0, 0.6, (70, 7))
    summary = evaluate_head(tmp_path, "test_svm", "toy", y, scores, LABELS)
    for name in ("confusion_test_svm.png", "confusion_test_svm.json", "roc_test_svm.png", "roc_test_svm.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "confusion_test_svm.json").read_text())
    assert saved["confusion_matrix"] == summary["confusion_matrix"] and np.sum(saved["confusion_matrix"]) == 70
    assert summary["accuracy"] == (scores.argmax(1) == y).mean()
    assert 0.5 < summary["macro_auc"] <= 1.0


def test_training_curves_and_probability_bars(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.3,1.9,0.28,1.95\n"
                                          "1,0.5,1.4,0.41,1.6\n")
    assert save_training_curves(tmp_path / "history.csv", tmp_path / "curves.png", "toy")
    assert not save_training_curves(tmp_path / "missing.csv", tmp_path / "x.png", "toy")
    probs = np.full((3, 7), 1 / 7)
    save_probability_bars(probs, LABELS, np.array([0, 3, 6]), tmp_path / "probabilities.png", "toy")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "probabilities.png").read_bytes()[:4] == b"\x89PNG"


def test_gradcam_figure_draws_public_domain_faces_only(tmp_path):
    from edgefer.train.gradcam import class_mean_maps, save_gradcam
    from edgefer.train.public_faces import PublicDomainFace, public_domain_faces

    heat = np.random.default_rng(0).random((10, 12, 12)).astype(np.float32)
    means, counts = class_mean_maps(heat, np.arange(10) % 7, 7)
    assert counts.sum() == 10 and np.allclose(means[0], heat[[0, 7]].mean(0))
    (public,) = public_domain_faces()  # the astronaut photo (scikit-image is in the dev extra)
    assert public.image.ndim == 2 and "public domain" in public.credit
    save_gradcam(means, counts, LABELS, tmp_path / "gradcam.png", "toy", [(public, heat[0], 3)])
    assert (tmp_path / "gradcam.png").read_bytes()[:4] == b"\x89PNG"
    dataset_face = np.zeros((48, 48), np.uint8)
    with pytest.raises(TypeError, match="public-domain"):
        save_gradcam(means, counts, LABELS, tmp_path / "x.png", "toy", [(dataset_face, heat[0], 3)])
    assert isinstance(public, PublicDomainFace)


def _meta(accuracy: dict[str, float], **extra) -> dict:
    metrics = {k: {"accuracy": v, "macro_f1": v - 0.05, "samples": 100} for k, v in accuracy.items()}
    return {"architecture": {"name": "mobilenet_v1", "alpha": 1.0, "params": 3_300_000}, "input": {"height": 48},
            "head": "svm", "svm": {"kind": "linear", "C": 0.01}, "metrics": metrics, **extra}


def test_results_table_reads_committed_json_and_labels_papers(tmp_path, capsys):
    results = tmp_path / "results"
    default = results / "fer2013_mobilenet_v1_48"
    default.mkdir(parents=True)
    # The schema of the default model's meta.json (no "dataset" block), with a conversion report beside it.
    (default / "meta.json").write_text(json.dumps(_meta(
        {"val_softmax": 0.655, "val_svm": 0.667},
        training={"dataset": "../shared/datasets/fer2013", "validation": "../shared/datasets/fer2013 (val)"})))
    (default / "default.conversion.json").write_text(json.dumps({"artifacts": [
        {"format": "tflite", "precision": "int8", "size_bytes": 3_600_000},
        {"format": "onnx", "precision": "fp32", "size_bytes": 13_000_000}]}))
    kdef = results / "kdef_subject"
    kdef.mkdir()
    (kdef / "meta.json").write_text(json.dumps(_meta(
        {"val_softmax": 0.9, "test_softmax": 0.61, "test_svm": 0.63},
        dataset={"layout": "kdef", "protocol": "subject"})))
    ck = results / "ckplus_kfold"
    (ck / "fold_00").mkdir(parents=True)
    (ck / "fold_00" / "meta.json").write_text(json.dumps(_meta({"test_svm": 0.5})))
    kfold_meta = _meta({"test_svm": 0.91}, dataset={"layout": "ckplus", "protocol": "kfold"}, kfold={"folds": 10})
    kfold_meta["metrics"]["test_svm"]["accuracy_std"] = 0.03
    (ck / "meta.json").write_text(json.dumps(kfold_meta))
    (results / "papers.json").write_text(json.dumps({"rows": [
        {"dataset": "KDEF", "protocol": "published", "model": "mobilenet_v1", "head": "SVM", "accuracy": 0.9354,
         "macro_f1": None, "source": "paper X"}]}))

    ours, papers = collect(results)
    assert len(ours) == 5 and len(papers) == 1  # 2 FER heads, 2 KDEF test heads, 1 k-fold mean (fold_00 skipped)
    fer = [r for r in ours if r["dataset"] == "FER2013"]
    assert {r["head"] for r in fer} == {"softmax", "linear SVM"}
    assert all(r["protocol"] == "PublicTest (val)" and r["int8_bytes"] == 3_600_000 for r in fer)
    table = render(ours, papers)
    assert "| KDEF | subject-independent | mobilenet_v1 48px | linear SVM | 63.00 |" in table
    assert "| CK+ | subject-wise 10-fold |" in table and "91.00 ± 3.00" in table
    assert "*93.54*" in table and "published: paper X" in table
    assert "66.70" in table and "3.60 MB" in table
    assert main(["--results", str(results), "--write", str(tmp_path / "table.md")]) == 0
    assert (tmp_path / "table.md").read_text() == capsys.readouterr().out == table


def test_experiments_publish_reports_but_not_models(tmp_path):
    from edgefer.train.experiments import EXPERIMENTS, command, publish

    run = tmp_path / "runs" / "x"
    (run / "checkpoint").mkdir(parents=True)
    (run / "fold_00").mkdir()
    for name in ("meta.json", "confusion_svm.png", "report.txt", "history.csv", "model.keras", "svm.joblib",
                 "checkpoint/state.json", "fold_00/meta.json", "faces.png", "gradcam.png", "fold_00/faces.png",
                 "fold_00/confusion_test_svm.png", "fold_00/gradcam.png"):
        (run / name).write_text("x")
    copied = publish(run, tmp_path / "results" / "x")
    # Dataset faces never leave runs/, nor the folds' PNGs but the first fold's Grad-CAM (heat maps only).
    assert sorted(p.relative_to(tmp_path / "results" / "x").as_posix() for p in copied) == [
        "confusion_svm.png", "fold_00/meta.json", "gradcam.png", "gradcam_fold_00.png", "history.csv", "meta.json",
        "report.txt"]
    assert command("kdef_hog_svm_subject", "S")[-2:] == ["--out", "runs/kdef_hog_svm_subject"]
    assert "S/kdef/KDEF" in command("kdef_hog_svm_subject", "S")
    assert all(EXPERIMENTS[n][0] in ("train", "baseline") for n in EXPERIMENTS)


def test_experiments_resume_passes_resume_to_each_run(monkeypatch, tmp_path):
    """``--resume``: the way a larger network is trained on two CPU cores a session at a time."""
    import edgefer.cli
    import edgefer.train.experiments as experiments

    calls = []
    monkeypatch.setattr(edgefer.cli, "main", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(experiments, "publish", lambda run, results: [])
    assert experiments.main(["fer2013_vgg16_48", "fer2013_cnn2_48", "--resume"]) == 0
    assert [argv[-1] for argv in calls] == ["--resume", "--resume"]
    assert calls[0][-3:-1] == ["--out", "runs/fer2013_vgg16_48"]
    calls.clear()
    assert experiments.main(["fer2013_cnn2_48"]) == 0 and "--resume" not in calls[0]
    calls.clear()
    assert experiments.main(["kdef_hog_svm_subject", "--resume"]) == 0  # a baseline: nothing to resume
    assert calls[0][0] == "baseline" and "--resume" not in calls[0]
    calls.clear()  # a CPU without bfloat16: every run in float32, whatever its own precision
    assert experiments.main(["fer2013_vgg16_48", "kdef_hog_svm_subject", "--precision", "float32"]) == 0
    assert calls[0][-2:] == ["--precision", "float32"] and "--precision" not in calls[1]
    from edgefer.cli import build_parser

    assert build_parser().parse_args(calls[0]).precision == "float32"  # the last one given wins


def test_every_experiment_is_a_valid_edgefer_command():
    from edgefer.cli import build_parser
    from edgefer.train.experiments import EXPERIMENTS, command

    parser = build_parser()
    for name in EXPERIMENTS:
        args = parser.parse_args(command(name, "../shared/datasets"))
        assert args.out.endswith(name)


def test_results_table_names_what_sets_two_runs_of_one_model_apart():
    from edgefer.train.results_table import _model_name

    meta = {"architecture": {"name": "mobilenet_v1", "alpha": 1.0, "init_from": "x.onnx"}, "input": {"height": 48}}
    assert _model_name(meta) == "mobilenet_v1 48px, fine-tuned"
    meta["training"] = {"config": {"augment_config": "crop_scale=0.8", "mixup": 0.2}}
    assert _model_name(meta) == "mobilenet_v1 48px, fine-tuned, stronger augmentation, mixup 0.2"
    meta["training"] = {"config": {"add_faces": ["kdef=../shared/datasets/kdef/KDEF", "ckplus48=ck48"]}}
    assert _model_name(meta) == "mobilenet_v1 48px, fine-tuned, + KDEF and CK+ (48x48) people"
    meta["training"]["config"]["epochs"] = 12  # the same start and data, a longer schedule
    assert _model_name(meta) == "mobilenet_v1 48px, fine-tuned 12 epochs, + KDEF and CK+ (48x48) people"
    meta["training"]["config"]["epochs"] = 0  # a new head on the start model's features
    assert _model_name(meta) == "mobilenet_v1 48px, extractor reused (0 epochs), + KDEF and CK+ (48x48) people"
    meta["training"]["config"].update(epochs=6, balance="weights")  # the same recipe with class weights
    assert _model_name(meta) == ("mobilenet_v1 48px, fine-tuned 6 epochs, class-balanced loss weights, "
                                 "+ KDEF and CK+ (48x48) people")
    meta["training"]["config"]["balance"] = "none"
    assert "balanced" not in _model_name(meta)
    meta["training"]["config"]["label_smoothing"] = 0.0  # the recipe's 0.1 goes unsaid
    assert _model_name(meta).endswith("6 epochs, no label smoothing, + KDEF and CK+ (48x48) people")
    scratch = {"architecture": {"name": "mobilenet_v1", "alpha": 0.5}, "input": {"height": 96},
               "training": {"config": {"epochs": 80}}}
    assert _model_name(scratch) == "mobilenet_v1 a0.5 96px, 80 epochs"  # its schedule's length
    scratch["training"]["config"]["precision"] = "mixed_bfloat16"
    assert _model_name(scratch) == "mobilenet_v1 a0.5 96px, 80 epochs, bfloat16 compute"
    scratch["training"]["config"]["precise_bn"] = 50
    assert _model_name(scratch) == "mobilenet_v1 a0.5 96px, 80 epochs, precise BN, bfloat16 compute"
    # A hybrid's --epochs train its parts; on two trained parts only its head trains.
    hybrid = {"architecture": {"name": "hybrid_mobilenet_vgg16"}, "input": {"height": 48},
              "training": {"config": {"epochs": 40, "hybrid_head_epochs": 10, "hybrid_parts": ["a.onnx", "b.keras"]}}}
    assert _model_name(hybrid) == "hybrid_mobilenet_vgg16 48px, two trained parts frozen, head 10 epochs"
    hybrid["training"]["config"]["hybrid_parts"] = None
    assert _model_name(hybrid) == "hybrid_mobilenet_vgg16 48px, parts 40 epochs each, head 10 epochs"
