"""Research dataset loaders on generated fixtures in each layout (KDEF, CK+, CK+48, JAFFE, RAF-DB)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.labels import EMOTIONS
from edgefer.train.corpora import load_corpus
from edgefer.train.kdef import parse_kdef_name

from .train_fixtures import write_ckplus, write_ckplus48, write_jaffe, write_kdef, write_rafdb


def test_kdef_names_parse_into_their_fields():
    name = parse_kdef_name("BM23SUHR.JPG")
    assert (name.session, name.sex, name.number, name.emotion, name.angle) == ("B", "M", 23, "surprise", "HR")
    assert name.subject == "M23"
    assert parse_kdef_name("AF01AFS.JPG").emotion == "fear"
    with pytest.raises(ValueError, match="not a KDEF file name.*AF01ANS.JPG"):
        parse_kdef_name("AF01XXS.JPG")


def test_kdef_filters_angles_crops_and_reports_missed_faces(tmp_path):
    corpus = load_corpus("kdef", write_kdef(tmp_path / "KDEF"), (48, 48))
    report = corpus.report
    # 2 people x 7 emotions x 3 angles (FL filtered out), minus M02's deleted AFS photo.
    assert report["crop"]["total"] == 41
    assert len(report["crop"]["no_face"]) == 7  # M02's blank HL photos
    assert len(report["borrowed_straight_box"]) == 6  # all but the one whose S photo is missing
    assert report["left_out"] == [p for p in report["crop"]["no_face"] if "AM02AFHL" in p]
    assert any(p.endswith("notes.jpg") for p in report["not_kdef_names"])
    assert len(corpus) == 40 and corpus.faces.images.shape == (40, 48, 48)
    assert set(corpus.subjects) == {"F01", "M02"}
    assert corpus.faces.class_counts()["fear"] == 4
    assert not any("FL" in s.rsplit("/", 1)[-1][6:] for s in corpus.faces.sources)


def test_kdef_drop_policy_and_bad_input(tmp_path):
    root = write_kdef(tmp_path / "KDEF")
    corpus = load_corpus("kdef", root, (48, 48), angles=("HL",), no_face="drop")
    assert len(corpus) == 7 and set(corpus.subjects) == {"F01"}
    assert len(corpus.report["left_out"]) == 7
    with pytest.raises(ValueError, match="unknown KDEF angle"):
        load_corpus("kdef", root, angles=("UP",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus("kdef", tmp_path / "nope")


def test_ckplus_original_layout(tmp_path):
    corpus = load_corpus("ckplus", write_ckplus(tmp_path / "CK+"), (48, 48))
    # Two labelled 7-class sequences: 3 peak frames each + their first frame as neutral; contempt skipped.
    assert len(corpus) == 8
    counts = corpus.faces.class_counts()
    assert counts["angry"] == 3 and counts["happy"] == 3 and counts["neutral"] == 2
    assert set(corpus.subjects) == {"S005"}
    assert corpus.report["contempt_sequences_skipped"] == 1
    assert all("_00000001" in s for s, y in zip(corpus.faces.sources, corpus.faces.labels)
               if EMOTIONS[y] == "neutral")


def test_ckplus_bad_label_file_is_named(tmp_path):
    root = write_ckplus(tmp_path / "CK+")
    bad = root / "Emotion" / "S005" / "001" / "S005_001_00000005_emotion.txt"
    bad.write_text("angry\n")
    with pytest.raises(ValueError, match="S005_001_00000005_emotion.txt.*expected one emotion code"):
        load_corpus("ckplus", root)


def test_ckplus48_class_folders_give_subjects(tmp_path):
    corpus = load_corpus("ckplus48", write_ckplus48(tmp_path / "ck48", subjects=2, per_subject=1), (48, 48))
    assert len(corpus) == 14  # contempt folder skipped
    assert set(corpus.subjects) == {"S100", "S101"}
    some_face = next((tmp_path / "ck48" / "happy").iterdir()).read_bytes()
    (tmp_path / "ck48" / "happy" / "face.png").write_bytes(some_face)
    with pytest.raises(ValueError, match="CK\\+ name like S010_004"):
        load_corpus("ckplus48", tmp_path / "ck48")


def test_jaffe_names_and_loader(tmp_path):
    corpus = load_corpus("jaffe", write_jaffe(tmp_path / "jaffe"), (48, 48))
    assert len(corpus) == 14 and corpus.faces.class_counts() == {e: 2 for e in EMOTIONS}
    assert set(corpus.subjects) == {"KA", "KL"}
    assert corpus.report["ignored"][0].endswith("README.tiff")


def test_rafdb_official_partition(tmp_path):
    corpus = load_corpus("rafdb", write_rafdb(tmp_path / "raf"), (48, 48))
    assert len(corpus) == 28
    assert (corpus.partition == "test").sum() == 14
    assert corpus.faces.class_counts() == {e: 4 for e in EMOTIONS}
    assert corpus.subjects is None


def test_rafdb_bad_label_line_names_file_and_line(tmp_path):
    root = write_rafdb(tmp_path / "raf")
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    label_file.write_text(label_file.read_text() + "train_99999.jpg 9\n")
    with pytest.raises(ValueError, match="list_patition_label.txt:29"):
        load_corpus("rafdb", root)


def test_unknown_layout_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="kdef, ckplus"):
        load_corpus("affectnet", tmp_path)


def test_corpus_subset_keeps_subjects_and_partition(tmp_path):
    corpus = load_corpus("rafdb", write_rafdb(tmp_path / "raf"), (48, 48))
    sub = corpus.subset(np.array([0, 3]))
    assert len(sub) == 2 and list(sub.partition) == list(corpus.partition[[0, 3]])


@pytest.mark.shared
def test_real_kdef_names_give_the_published_protocol():
    """Every KDEF file name parses; S/HL/HR hold the 2,938 photos of 70 people the 2,644/294 protocol splits."""
    from edgefer.train.splits import published_kdef_split

    from .conftest import KDEF, need

    names = [parse_kdef_name(p.name) for p in need(KDEF, "the KDEF dataset").rglob("*") if p.suffix.upper() == ".JPG"]
    in_protocol = [n for n in names if n.angle in ("S", "HL", "HR")]
    assert len(in_protocol) == 2938
    assert len({n.subject for n in in_protocol}) == 70
    assert {n.emotion for n in in_protocol} == set(EMOTIONS)
    train, test = published_kdef_split(len(in_protocol))
    assert (len(train), len(test)) == (2644, 294)
