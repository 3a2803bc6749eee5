"""`edgefer eval-cross`: held-out people from the manifest, shared crops, and the `fer` peer's protocol."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefer.runtime.labels import EMOTIONS
from edgefer.train.cross_eval import FaceSet, held_out, markdown, run_cross_eval
from edgefer.train.provenance import dataset_name, seen_subjects, source

from .train_fixtures import write_ckplus48, write_kdef

# A stand-in for the `fer` package with its real interface (FER(mtcnn=...), _get_labels, _classify_emotions):
# it calls every face "happy" unless the face is dark, so its figures are predictable.
_FAKE_FER = '''
import numpy as np

class FER:
    def __init__(self, mtcnn=False):
        pass

    @staticmethod
    def _get_labels():
        return {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}

    def _classify_emotions(self, faces):
        assert faces.shape[1:] == (64, 64) and faces.min() >= -1 and faces.max() <= 1
        out = np.zeros((len(faces), 7), np.float32)
        out[:, 3] = faces.mean(axis=(1, 2)) > -0.5
        out[:, 0] = 0.5
        return out
'''


def _faces(subjects):
    n = len(subjects)
    return FaceSet("kdef", np.zeros((n, 8, 8), np.uint8), np.arange(n) % 7, np.asarray(subjects))


def test_held_out_people_come_from_the_manifest_record():
    faces = _faces(["F01", "F01", "M02", "M03"])
    sources = [source("fer2013", "train", "x", 10, None), source("kdef", "train", "k", 5, ["F01"]),
               source("kdef", "validation", "k", 2, ["M03"]), source("kdef", "test", "k", 3, ["M02"])]
    part, note = held_out(faces, "kdef", sources, assume_unseen=False)
    assert part.subjects.tolist() == ["M02"] and note["held_out_people"] == 1
    part, note = held_out(faces, "kdef", [source("fer2013", "train", "x", 10, None)], assume_unseen=False)
    assert len(part.labels) == 4 and note["rule"] == "the model never saw this dataset"
    part, note = held_out(faces, "kdef", [source("kdef", "train", "k", 5, None)], assume_unseen=False)
    assert part is None and "without subject ids" in note["skipped"]
    with pytest.raises(ValueError, match="--assume-unseen"):
        held_out(faces, "kdef", None, assume_unseen=False)
    part, note = held_out(faces, "kdef", None, assume_unseen=True)
    assert len(part.labels) == 4 and note["rule"].startswith("assumed")


def test_dataset_names_tie_layouts_to_people():
    assert dataset_name("folders", "../shared/datasets/fer2013") == "fer2013"
    assert dataset_name("folders", "/data/fer2013/train") == "fer2013"
    assert dataset_name("ckplus48", "/x") == dataset_name("ckplus", "/y") == "ckplus"
    assert seen_subjects([source("ckplus", "train", "a", 1, ["S010"])], "kdef") == set()


@pytest.fixture
def fake_fer_python(tmp_path) -> str:
    pkg = tmp_path / "fakefer" / "fer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(_FAKE_FER)
    wrapper = tmp_path / "fer-python"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={pkg.parent} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def test_eval_cross_scores_artifacts_and_the_peer_on_the_same_crops(tiny_artifacts, synthetic_data, tmp_path,
                                                                    fake_fer_python):
    from edgefer.cli import main

    kdef = write_kdef(tmp_path / "kdef")
    ck = write_ckplus48(tmp_path / "ck48", subjects=3, per_subject=1)
    model = tiny_artifacts / "tiny_int8.tflite"
    out = tmp_path / "cross.json"
    assert main(["eval-cross", "--model", str(model), "--fer2013", str(synthetic_data), "--kdef", str(kdef),
                 "--ckplus", str(ck), "--kdef-angles", "S", "--peer-python", fake_fer_python,
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["schema"] == "edgefer-cross-dataset/1" and result["command"].startswith("edgefer eval-cross")
    assert set(result["sets"]) == {"fer2013-val", "kdef", "ckplus"}
    assert result["sets"]["kdef"]["faces"] == 13  # 2 people x 7 emotions, M02 afraid has no S photo
    assert result["sets"]["ckplus"]["faces"] == 21 and result["sets"]["ckplus"]["crop_side"] == 48
    (row,) = result["models"]
    # The tiny model trained on generated class folders only: every KDEF and CK+ person is held out.
    assert row["held_out"]["kdef"]["rule"] == "the model never saw this dataset"
    assert row["results"]["kdef"]["samples"] == 13 and row["results"]["ckplus"]["samples"] == 21
    peer = result["peer"]["results"]
    # The astronaut crops are bright: the stand-in says happy for each, so it is right on the 2 happy photos.
    assert peer["kdef"]["accuracy"] == pytest.approx(2 / 13)
    for name, r in row["results"].items():
        assert row["minus_fer_points"][name] == pytest.approx((r["accuracy"] - peer[name]["accuracy"]) * 100,
                                                              abs=0.01)
    assert "fer" in markdown(result)


def test_eval_cross_names_a_missing_fer(tiny_artifacts, synthetic_data, capsys):
    from edgefer.cli import main

    code = main(["eval-cross", "--model", str(tiny_artifacts / "tiny_fp32.onnx"), "--fer2013", str(synthetic_data),
                 "--peer-python", sys.executable])
    assert code == 2 and "fer package is not installed" in capsys.readouterr().err


def test_eval_cross_adds_the_tighter_view_to_flip(tiny_artifacts, synthetic_data, tmp_path, capsys):
    """--flip --zoom 0.9: each artifact scored on one view, with flip, and with flip and the tighter view."""
    from edgefer.cli import main

    model = str(tiny_artifacts / "tiny_fp32.onnx")
    assert main(["eval-cross", "--model", model, "--fer2013", str(synthetic_data), "--zoom", "0.9"]) == 2
    assert "give --flip with it" in capsys.readouterr().err
    assert main(["eval-cross", "--model", model, "--fer2013", str(synthetic_data), "--flip", "--zoom", "1.5"]) == 2
    assert "zoom must be in [0.5, 1)" in capsys.readouterr().err
    out = tmp_path / "cross.json"
    assert main(["eval-cross", "--model", model, "--model", str(tiny_artifacts / "tiny_int8.tflite"), "--fer2013",
                 str(synthetic_data), "--flip", "--zoom", "0.9", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].split()[-3:] == ["--flip", "--zoom", "0.9"]
    views = [(r["test_time_flip"], r["test_time_zoom"]) for r in result["models"]]
    assert views == [(False, None), (True, None), (True, 0.9)] * 2
    assert all(r["results"]["fer2013-val"]["samples"] == 84 for r in result["models"])
    # Each row of the second model is set against the first model's row of the same views.
    assert [r["versus_first"]["model"] for r in result["models"][3:]] == [model] * 3
    assert "tiny_fp32.onnx (default, flip, zoom 0.9)" in markdown(result)


def test_committed_cross_dataset_json_is_of_the_shipped_model_and_is_what_the_readme_shows():
    """The README row comes from benchmarks/results/cross-dataset.json, made for the artifact shipped now."""
    import re

    from edgefer.runtime.classifier import DEFAULT_ZOOM
    from edgefer.runtime.manifest import Manifest

    repo = Path(__file__).resolve().parents[1]
    result = json.loads((repo / "benchmarks" / "results" / "cross-dataset.json").read_text())
    # The README shows what the runtime does by default: test-time flip and the tighter view.
    rows = {Path(r["model"]).name: r for r in result["models"]
            if r.get("test_time_flip") and r.get("test_time_zoom") == DEFAULT_ZOOM}
    shipped = repo / "runtime" / "models" / "default_int8.tflite"
    assert rows[shipped.name]["sha256"] == Manifest.load(shipped).sha256, "re-run `make model-figures`"
    line = next(ln for ln in (repo / "README.md").read_text().splitlines()
                if ln.startswith("| edgefer `default_int8.tflite` |") and "KDEF" not in ln and "(" in ln)
    shown = [float(v) for v in re.findall(r"([\d.]+) %", line)]
    want = [rows[shipped.name]["results"][s]["accuracy"] * 100 for s in ("fer2013-val", "kdef", "ckplus")]
    assert shown == pytest.approx(want, abs=0.006)
    fer_line = next(ln for ln in (repo / "README.md").read_text().splitlines() if ln.startswith("| `fer` "))
    fer_shown = [float(v) for v in re.findall(r"([\d.]+) %", fer_line)]
    fer_same = {**result["peer"]["results"], **rows[shipped.name].get("peer_on_same_faces", {})}
    assert fer_shown == pytest.approx([fer_same[s]["accuracy"] * 100 for s in ("fer2013-val", "kdef", "ckplus")],
                                      abs=0.006)


def test_a_model_that_trained_on_some_people_is_set_against_fer_on_the_others(tiny_artifacts, tmp_path,
                                                                              fake_fer_python):
    """fer scores every face once; a model that saw F01 is compared with fer on M02's faces only."""
    import shutil

    from edgefer.cli import main

    kdef = write_kdef(tmp_path / "kdef")
    saw = tmp_path / "saw_f01.tflite"
    shutil.copy(tiny_artifacts / "tiny_int8.tflite", saw)
    manifest = json.loads((tiny_artifacts / "tiny_int8.tflite.json").read_text())
    manifest["training"]["sources"].append(source("kdef", "train", str(kdef), 7, ["F01"]))
    Path(str(saw) + ".json").write_text(json.dumps(manifest))
    out = tmp_path / "cross.json"
    assert main(["eval-cross", "--model", str(tiny_artifacts / "tiny_int8.tflite"), "--model", str(saw),
                 "--kdef", str(kdef), "--kdef-angles", "S", "--peer-python", fake_fer_python, "--flip",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].split()[-3:] == ["--json", str(out), "--flip"]  # rerunning it gives the same rows
    plain, flipped, own, own_flipped = result["models"]
    assert [r["test_time_flip"] for r in result["models"]] == [False, True, False, True]
    assert plain["results"]["kdef"]["samples"] == 13 and "peer_on_same_faces" not in plain
    assert own["results"]["kdef"]["samples"] == 6 and own["held_out"]["kdef"]["held_out_people"] == 1
    fer_m02 = own["peer_on_same_faces"]["kdef"]
    assert fer_m02["samples"] == 6 and result["peer"]["results"]["kdef"]["samples"] == 13
    assert fer_m02["accuracy"] == pytest.approx(1 / 6, abs=1e-5)  # the stand-in's "happy" is right on M02's happy photo
    assert own["minus_fer_points"]["kdef"] == pytest.approx((own["results"]["kdef"]["accuracy"] - 1 / 6) * 100,
                                                            abs=0.01)
    assert "fer, on the same held-out faces" in markdown(result)
    # Each later row is set against the first of its flip setting, face by face, on the faces both scored.
    assert "versus_first" not in plain and "versus_first" not in flipped
    assert own["versus_first"]["model"] == plain["model"] and own_flipped["versus_first"]["model"] == flipped["model"]
    v = own["versus_first"]["sets"]["kdef"]
    assert v["faces"] == 6  # M02's faces: the second model saw F01
    assert v["only_this_right"] == v["only_first_right"] == 0 and v["points"] == 0.0 and v["mcnemar_p"] == 1.0
    assert v["people"] == 1 and v["people_p"] == 1.0  # KDEF knows its people: also compared person by person
    assert "against tiny_int8.tflite" in markdown(result)


def test_mcnemar_and_the_paired_comparison():
    import numpy as np

    from edgefer.train.cross_eval import mcnemar_p, paired

    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 / 1024) and mcnemar_p(0, 10) == mcnemar_p(10, 0)
    assert mcnemar_p(3, 1) == pytest.approx(0.625)  # 2 * (1 + 4) / 16
    # First: faces 0-4, right on 0, 1, 2. Other: faces 2-6, right on 2, 3, 4, 5. Shared: 2, 3, 4.
    first = (np.arange(5), np.array([True, True, True, False, False]))
    other = (np.arange(2, 7), np.array([True, True, True, True, False]))
    v = paired(first, other)
    assert v["faces"] == 3 and v["only_this_right"] == 2 and v["only_first_right"] == 0
    assert v["points"] == pytest.approx((3 / 3 - 1 / 3) * 100, abs=0.01) and v["mcnemar_p"] == pytest.approx(0.5)
    assert "people_p" not in v  # FER2013 knows no people: the faces count one by one
    # The same faces of two people: "b" holds both of the faces only the other model gets right.
    v = paired(first, other, np.array(["a", "a", "a", "b", "b", "c", "c"]))
    assert v["people"] == 2 and v["people_p"] == 1.0  # one person with a difference: a coin's one toss


def test_the_person_by_person_test_counts_people_not_faces():
    import numpy as np

    from edgefer.train.cross_eval import mcnemar_p, people_p

    assert people_p(np.array([0, 0])) == 1.0 and people_p(np.array([2, -2])) == 1.0
    assert people_p(np.array([1, 1, 1])) == pytest.approx(2 / 8)  # exact: all + or all - of 8 sign patterns
    # Ten faces better for one person: McNemar calls it certain, by person it is one toss of a coin.
    assert mcnemar_p(10, 0) < 0.01 and people_p(np.array([10, 0, 0])) == 1.0
    many = np.ones(20, np.int64)  # 20 people, each one face better: past 16 people, seeded random patterns
    assert people_p(many) < 1e-4
    mixed = np.array([3, -1, 2, 1, -2, 1, 1, -1, 2, 1] * 2)
    assert 0.01 < people_p(mixed) < 0.5 and people_p(mixed) == people_p(mixed)  # seeded: one answer


def test_the_random_person_by_person_test_agrees_with_the_exact_one():
    import numpy as np

    from edgefer.train.cross_eval import people_p

    net = np.array([3, -1, 2, 1, -2, 1, 1, -1, 2, 1, 1, -1, 1, 2, -1, 1, 1, -2], np.int64)  # 18 people: drawn
    signs = ((np.arange(2 ** len(net))[:, None] >> np.arange(len(net))) & 1) * 2 - 1
    exact = float((np.abs(signs @ net) >= abs(net.sum())).mean())  # every one of the 2^18 sign patterns
    assert 0.02 < exact < 0.5
    assert people_p(net) == pytest.approx(exact, abs=0.005)  # 200,000 draws, drawn in blocks
    assert people_p(net, draws=12_345) == pytest.approx(exact, abs=0.02)  # a last, partial block counts too
