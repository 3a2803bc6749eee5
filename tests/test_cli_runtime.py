"""`edgefer detect` and `edgefer eval` end to end, including bad input."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.cli import main
from edgefer.runtime.classifier import default_model
from edgefer.runtime.commands import run_detect
from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.manifest import sidecar_path


def _edgefer(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgefer", *args], capture_output=True, text=True, timeout=timeout)


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_shipped_models_exist_with_manifests():
    for backend in ("litert", "onnx"):
        path = default_model(backend)
        manifest = json.loads(sidecar_path(path).read_text())
        assert manifest["labels"] == list(EMOTIONS)
        assert manifest["head"] == "svm"
        assert manifest["metrics"]["samples"] == 3589  # evaluated on all of FER2013 PublicTest


def test_installed_defaults_lists_each_installed_backend_with_its_shipped_model(monkeypatch):
    from edgefer.runtime import classifier

    monkeypatch.setattr(classifier, "backend_installed", lambda name: name in ("onnx", "litert"))
    found = classifier.installed_defaults()
    assert sorted(found) == ["litert", "onnx"]
    assert found["onnx"].suffix == ".onnx" and found["litert"].suffix == ".tflite"
    monkeypatch.setattr(classifier, "backend_installed", lambda name: name == "tensorrt")
    assert classifier.installed_defaults() == {}  # installed, but no engine is shipped (built per device)


@pytest.mark.parametrize("backend", ["litert", "onnx"])
def test_detect_on_shared_media_with_shipped_model(media, backend):
    expected = {"justin.jpg": 1, "two_people.jpg": 2, "no-faces.jpg": 0}
    for name, minimum in expected.items():
        out = io.StringIO()
        run_detect(str(media / name), backend=backend, out=out, summary_out=None)
        (event,) = _events(out.getvalue())
        assert event["frame"] == 0 and event["timestamp"] > 1.6e9 and "position_s" not in event  # epoch seconds
        assert set(event["timings_ms"]) == {"read", "detect", "preprocess", "infer"}
        assert event["scores_kind"] == "svm_margins"
        if minimum == 0:
            assert event["faces"] == []
        assert len(event["faces"]) >= minimum
        for face in event["faces"]:
            assert face["label"] in EMOTIONS and set(face["scores"]) == set(EMOTIONS) == set(face["probabilities"])
            assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
            assert 0.0 < face["probability"] <= 1.0
            # The label is the most probable class, which is also the top raw score.
            assert face["probability"] == max(face["probabilities"].values())
            assert face["scores"][face["label"]] == max(face["scores"].values())
            assert len(face["box"]) == 4


def test_detect_video_frames(media):
    out = io.StringIO()
    result = run_detect(str(media / "fer_test.mp4"), out=out, summary_out=None, max_frames=40)
    events = _events(out.getvalue())
    assert len(events) == 40 and result["frames"] == 40
    assert [e["frame"] for e in events] == list(range(40))
    assert sum(len(e["faces"]) for e in events) >= 30
    # timestamp: when each frame was read (epoch seconds); position_s: where it sits in the clip.
    assert events[0]["timestamp"] > 1.6e9 and events[-1]["timestamp"] >= events[0]["timestamp"]
    positions = [e["position_s"] for e in events]
    assert positions == sorted(positions) and positions[-1] > positions[0]


def test_runtime_never_imports_training_frameworks(media):
    """A real detect run through the CLI leaves TensorFlow, Keras, scikit-learn and matplotlib unimported."""
    code = (
        "import sys, io, contextlib\n"
        "from edgefer.cli import main\n"
        f"buf = io.StringIO()\n"
        f"with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['detect', '--source', {str(media / 'two_people.jpg')!r}, '--quiet'])\n"
        "assert rc == 0 and '\"faces\"' in buf.getvalue(), buf.getvalue()\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'tf2onnx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout


def test_detect_cli_prints_json_and_summary(tmp_path):
    from edgefer.samples import astronaut_bgr

    img = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(img), astronaut_bgr())
    proc = _edgefer("detect", "--source", str(img))
    assert proc.returncode == 0, proc.stderr
    (event,) = _events(proc.stdout)
    assert len(event["faces"]) == 1
    assert "detect" in proc.stderr and "infer" in proc.stderr and "total" in proc.stderr
    # LiteRT's C++ notice comes through Python logging, not straight onto fd 2
    assert "edgefer.runtime.backends.litert: Created TensorFlow Lite XNNPACK delegate" in proc.stderr
    assert not any(line.startswith("INFO: Created") for line in proc.stderr.splitlines())


def test_detect_quiet_prints_nothing_on_stderr(tmp_path):
    from edgefer.samples import astronaut_bgr

    img = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(img), astronaut_bgr())
    for backend in ("litert", "onnx"):
        proc = _edgefer("detect", "--source", str(img), "--backend", backend, "--quiet")
        assert proc.returncode == 0, proc.stderr
        assert len(_events(proc.stdout)) == 1
        assert proc.stderr == "", f"{backend}: {proc.stderr}"


def test_detect_onnx_says_which_execution_providers_it_used(tmp_path):
    pytest.importorskip("onnxruntime")
    from edgefer.samples import astronaut_bgr

    img = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(img), astronaut_bgr())
    proc = _edgefer("detect", "--source", str(img), "--backend", "onnx", "--providers", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "runs on CPUExecutionProvider" in proc.stderr and "(onnx on CPUExecutionProvider," in proc.stderr
    proc = _edgefer("detect", "--source", str(img), "--backend", "onnx", "--providers", "cuda,cpu")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        assert proc.returncode == 2 and "this onnxruntime has no CUDAExecutionProvider" in proc.stderr


def test_directory_with_corrupt_image_continues(tmp_path, media):
    shutil.copy(media / "justin.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\x00not an image")
    shutil.copy(media / "no-faces.jpg", tmp_path / "c.jpg")
    proc = _edgefer("detect", "--source", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    events = _events(proc.stdout)
    assert len(events) == 3
    assert "error" in events[1] and "b.jpg" in events[1]["error"]
    assert len(events[0]["faces"]) >= 1 and events[2]["faces"] == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["--source", "/no/such/image.jpg"], "does not exist"),
        (["--source", "/dev/video77"], "/dev/video77 does not exist"),
        (["--source", "IMG", "--backend", "openvino"], "unknown backend 'openvino'"),
        # edgefer's own C engine is gone: LiteRT (XNNPACK) runs .tflite on every CPU
        (["--source", "IMG", "--backend", "native"], "unknown backend 'native'; valid backends: litert, onnx, tensorrt"),
        (["--source", "IMG", "--model", "/no/model.tflite"], "model file /no/model.tflite does not exist"),
        (["--source", "IMG", "--model", "MODEL.pt"], "cannot tell the model format"),
    ],
)
def test_bad_input_exits_nonzero_with_a_message(tmp_path, args, message):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((64, 64, 3), np.uint8))
    model_pt = tmp_path / "m.pt"
    model_pt.write_bytes(b"x")
    args = [a.replace("IMG", str(img)).replace("MODEL.pt", str(model_pt)) for a in args]
    proc = _edgefer("detect", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


def _copy_model(tmp_path: Path, backend: str) -> Path:
    src = default_model(backend)
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    return dst


def test_corrupt_model_refused_before_capture(tmp_path):
    model = _copy_model(tmp_path, "litert")
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    proc = _edgefer("detect", "--source", "0", "--model", str(model))
    assert proc.returncode == 2
    assert "does not match its manifest" in proc.stderr  # checked before the (absent) camera is touched


def test_mismatched_input_shape_refused(tmp_path):
    model = _copy_model(tmp_path, "onnx")
    side = sidecar_path(model)
    manifest = json.loads(side.read_text())
    wrong = manifest["input"]["height"] + 16  # a size the model does not take
    manifest["input"]["height"] = manifest["input"]["width"] = wrong
    side.write_text(json.dumps(manifest))
    proc = _edgefer("detect", "--source", "0", "--model", str(model))
    assert proc.returncode == 2
    assert f"manifest says (N, {wrong}, {wrong}, 3)" in proc.stderr


def test_missing_manifest_refused(tmp_path):
    model = _copy_model(tmp_path, "onnx")
    sidecar_path(model).unlink()
    proc = _edgefer("detect", "--source", "0", "--model", str(model))
    assert proc.returncode == 2 and "no manifest" in proc.stderr


def test_missing_camera_exits_nonzero():
    proc = _edgefer("detect", "--source", "/dev/video42")
    assert proc.returncode == 2 and "camera /dev/video42 does not exist" in proc.stderr


def test_eval_on_generated_faces_json(tiny_artifacts, synthetic_data, capsys):
    rc = main(["eval", "--model", str(tiny_artifacts / "tiny_fp32.onnx"), "--data", str(synthetic_data / "val"),
               "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 84
    assert set(result["per_class"]) == set(EMOTIONS)
    assert np.asarray(result["confusion_matrix"]).sum() == 84
    assert 0 <= result["macro_f1"] <= 1
    # The runtime's default test-time views: the face, its mirror image and their tighter views.
    assert result["test_time_flip"] is True and result["test_time_zoom"] == 0.9
    # The calibration error of the probabilities it reports, on these faces (the tiny model has a temperature).
    assert 0 <= result["ece"] <= 1 and result["calibrated"] is True
    assert main(["eval", "--model", str(tiny_artifacts / "tiny_fp32.onnx"), "--data", str(synthetic_data / "val"),
                 "--json", "--no-zoom", "--no-flip"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["test_time_flip"] is False and alone["test_time_zoom"] is None and alone["samples"] == 84


@pytest.mark.parametrize("args,message", [
    (["--zoom", "1"], "must be a finite number >= 0.5 and < 1"),
    (["--zoom", "0.3"], "must be a finite number >= 0.5 and < 1"),
    (["--zoom", "0.8", "--no-zoom"], "not allowed with argument --zoom"),
])
def test_eval_refuses_a_zoom_that_is_no_tighter_view(tiny_artifacts, synthetic_data, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model", str(tiny_artifacts / "tiny_fp32.onnx"), "--data", str(synthetic_data / "val"),
              *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_eval_applies_aliases(tiny_artifacts, tmp_path, capsys):
    from .conftest import write_class_folders

    write_class_folders(tmp_path, 4, names={"angry": "anger", "happy": "happiness"})
    rc = main(["eval", "--model", str(tiny_artifacts / "tiny_int8.tflite"), "--data", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "macro-F1" in text and "confusion matrix" in text
    assert "expected calibration error" in text
    # The data may also be given as the argument (`edgefer eval faces/`), as detect takes its source.
    assert main(["eval", str(tmp_path), "--model", str(tiny_artifacts / "tiny_int8.tflite")]) == 0
    assert capsys.readouterr().out == text
    assert main(["eval", "--model", str(tiny_artifacts / "tiny_int8.tflite")]) == 2
    assert "eval: no data given" in capsys.readouterr().err


def test_shipped_int8_onnx_agrees_with_its_fp32_model_on_real_faces(fer_root):
    """On an AVX2-only x86 CPU onnxruntime's int8 kernels saturate unless the backend asks for precision."""
    pytest.importorskip("onnxruntime")
    from edgefer.runtime.classifier import EmotionClassifier
    from edgefer.runtime.datasets import load_class_folders

    images = load_class_folders(fer_root / "val", limit_per_class=60).images
    models = default_model("onnx").parent
    top1 = []
    for name in ("default_fp32.onnx", "default_int8.onnx"):
        classifier = EmotionClassifier(models / name, backend="onnx", threads=2)
        try:
            top1.append(classifier.predict_dataset(images).argmax(axis=1))
        finally:
            classifier.close()
    agreement = float(np.mean(top1[0] == top1[1]))
    assert agreement >= 0.97, f"default_int8.onnx agrees with default_fp32.onnx on {agreement:.1%} of the faces"


def test_eval_shipped_model_on_fer_val(fer_root, capsys):
    rc = main(["eval", "--data", str(fer_root / "val"), "--limit-per-class", "60", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    expected = sum(min(60, len(list(d.iterdir()))) for d in (fer_root / "val").iterdir() if d.is_dir())
    assert result["samples"] == expected
    # Far above the 14 % of chance on 7 classes: the shipped model really classifies.
    assert result["accuracy"] > 0.45


def test_detect_takes_its_source_as_an_argument_or_as_source_option(tmp_path, capsys):
    """`edgefer detect photo.jpg` and `--source photo.jpg` run alike; none, or two that differ, is a clear error."""
    photo = tmp_path / "blank.png"
    cv2.imwrite(str(photo), np.full((120, 160, 3), 128, np.uint8))
    for args in ([str(photo)], ["--source", str(photo)], [str(photo), "--source", str(photo)]):
        assert main(["detect", *args, "--quiet"]) == 0
        (event,) = _events(capsys.readouterr().out)
        assert event["source"] == str(photo) and event["faces"] == []
    assert main(["detect", "--quiet"]) == 2
    assert "no source given" in capsys.readouterr().err
    assert main(["detect", str(photo), "--source", str(tmp_path / "other.png")]) == 2
    err = capsys.readouterr().err
    assert "two sources given" in err and "other.png" in err
