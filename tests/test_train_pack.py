"""Face packs: a research set's Haar crops saved once, then trained on where the photos or the cascade are not."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .train_fixtures import write_ckplus48, write_kdef


@pytest.fixture(scope="module")
def kdef(tmp_path_factory) -> Path:
    return write_kdef(tmp_path_factory.mktemp("kdef"))


def _pack(*argv: str) -> None:
    from edgefer.cli import main

    assert main(["pack", *argv]) == 0


def test_a_pack_trains_on_the_same_faces_and_people_without_the_cascade(kdef, tmp_path, monkeypatch, capsys):
    """CK+48 10-fold with KDEF people added from a pack: the same fitting faces, people and provenance as from
    the photos, on an OpenCV without CascadeClassifier (opencv-python 5) and without the photos."""
    from edgefer.runtime.preprocess import InputSpec
    from edgefer.train.protocols import prepare_data
    from edgefer.train.trainer import TrainConfig

    ck48 = write_ckplus48(tmp_path / "ck48", subjects=6, per_subject=2)
    shutil.rmtree(ck48 / "neutral")
    pack = tmp_path / "kdef-48.npz"
    _pack("kdef", str(kdef), "--size", "48", "--angles", "S", "--out", str(pack))
    assert "faces of 2 people, 48x48" in capsys.readouterr().out

    def fold(out: Path, added: str):
        out.mkdir()
        return prepare_data(TrainConfig(data=str(ck48), out=str(out), dataset="ckplus48", protocol="kfold", folds=3,
                                        fold=0, angles=["S"], add_faces=[added]), InputSpec(), out)

    photos = fold(tmp_path / "photos", f"kdef={kdef}")
    monkeypatch.delattr(cv2, "CascadeClassifier")
    moved = tmp_path / "elsewhere.npz"
    pack.rename(moved)
    packed = fold(tmp_path / "packed", f"kdef={moved}")
    np.testing.assert_array_equal(packed.train.images, photos.train.images)
    np.testing.assert_array_equal(packed.train.labels, photos.train.labels)
    assert list(packed.train_subjects) == list(photos.train_subjects)
    # eval-cross finds the people the run saw by dataset name and person, not by path.
    strip = [{k: v for k, v in s.items() if k != "path"} for s in packed.sources]
    assert strip == [{k: v for k, v in s.items() if k != "path"} for s in photos.sources]
    assert packed.report["added"][0]["loader"]["face_pack"] == str(moved)


def test_a_pack_loads_as_the_main_dataset(kdef, tmp_path):
    from edgefer.train.corpora import load_corpus

    pack = tmp_path / "kdef.npz"
    _pack("kdef", str(kdef), "--size", "40", "--out", str(pack))  # the loader's default angles and no-face rule
    options = {"angles": ("S", "HL", "HR"), "no_face": "borrow"}
    photos, packed = load_corpus("kdef", kdef, (40, 40), **options), load_corpus("kdef", pack, (40, 40), **options)
    assert packed.name == photos.name and packed.faces.label_names == photos.faces.label_names
    np.testing.assert_array_equal(packed.faces.images, photos.faces.images)
    assert packed.faces.sources == photos.faces.sources and packed.faces.skipped == photos.faces.skipped
    assert list(packed.subjects) == list(photos.subjects)
    assert packed.report["crop"] == photos.report["crop"] and packed.report["crop"]["no_face_count"] > 0
    assert packed.report["borrowed_straight_box"] == photos.report["borrowed_straight_box"]


def test_a_pack_made_for_another_run_is_refused_saying_what_differs(kdef, tmp_path):
    from edgefer.train.corpora import load_corpus

    pack = tmp_path / "kdef-S.npz"
    _pack("kdef", str(kdef), "--size", "48", "--angles", "S", "--out", str(pack))
    with pytest.raises(ValueError, match=r"options .*'angles': \['S'\].*the run asks for .*'HL'"):
        load_corpus("kdef", pack, (48, 48), angles=("S", "HL", "HR"))
    with pytest.raises(ValueError, match=r"size \[48, 48\] \(the run asks for \[96, 96\]\); make one"):
        load_corpus("kdef", pack, (96, 96), angles=("S",))
    with pytest.raises(ValueError, match="layout 'kdef' \\(the run asks for 'jaffe'\\)"):
        load_corpus("jaffe", pack, (48, 48))
    with pytest.raises(FileNotFoundError, match="make it where the photos are with edgefer pack kdef ROOT --size 48"):
        load_corpus("kdef", tmp_path / "typo.npz", (48, 48))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a face pack"):
        load_corpus("kdef", junk, (48, 48))


def test_the_pack_command_fails_clearly(tmp_path, capsys):
    from edgefer.cli import main

    assert main(["pack", "kdef", str(tmp_path / "missing"), "--size", "48", "--out", str(tmp_path / "k.npz")]) == 2
    assert "KDEF folder" in capsys.readouterr().err
    assert main(["pack", "jaffe", str(tmp_path), "--size", "48", "--angles", "S", "--out", str(tmp_path / "j.npz")]) == 2
    assert "load_jaffe takes no option angles" in capsys.readouterr().err
    assert main(["pack", "kdef", str(tmp_path), "--size", "48", "--out", str(tmp_path / "k.zip")]) == 2
    assert "ends in .npz" in capsys.readouterr().err
    assert main(["pack", "kdef", str(tmp_path), "--size", "0", "--out", str(tmp_path / "k.npz")]) == 2
    assert "--size 0: give the face side in pixels" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.npz"))
