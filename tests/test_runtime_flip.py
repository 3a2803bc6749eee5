"""Test-time views: each face, its mirror image and their tighter views in one batch, their scores averaged."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.classifier import EmotionClassifier, check_zoom, installed_defaults, zoomed
from edgefer.runtime.preprocess import preprocess_faces


@pytest.fixture(params=["litert", "onnx"])
def plain_and_flipped(request):
    """The default model on one backend, without and with test-time flip."""
    if request.param not in installed_defaults():
        pytest.skip(f"{request.param} is not installed")
    plain = EmotionClassifier(None, request.param)
    flipped = EmotionClassifier(None, request.param, flip=True)
    yield plain, flipped
    plain.close()
    flipped.close()


def test_flip_averages_the_face_and_its_mirror(plain_and_flipped):
    plain, flipped = plain_and_flipped
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    want = (plain.classify(faces).scores + plain.classify(faces[:, :, ::-1]).scores) / 2
    got = flipped.classify(faces).scores
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, plain.classify(faces).scores, atol=1e-3)  # the mirror image counted
    assert flipped.classify(faces[:0]).scores.shape == (0, len(flipped.labels))


def test_one_pass_gives_every_view_setting(plain_and_flipped):
    """What the conversion gate and `edgefer calibrate` use: every view setting's scores from one pass of four
    views a face, each equal to what a classifier of that setting gives, across batches of uneven size."""
    plain, flipped = plain_and_flipped
    faces = np.random.default_rng(1).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    got = flipped.predict_dataset_views(faces, zoom=0.8, batch_size=3)  # its own flip and zoom do not matter
    assert sorted(got) == ["flip", "flip+zoom", "one", "zoom"]
    np.testing.assert_allclose(got["one"], plain.predict_dataset(faces), atol=1e-5)
    np.testing.assert_allclose(got["flip"], flipped.predict_dataset(faces), atol=1e-5)
    name = plain.backend.name
    for flip, views in ((False, "zoom"), (True, "flip+zoom")):
        other = EmotionClassifier(None, name, flip=flip, zoom=0.8)
        try:
            np.testing.assert_allclose(got[views], other.predict_dataset(faces), atol=1e-5)
        finally:
            other.close()
    empty = plain.predict_dataset_views(faces[:0])
    assert {k: v.shape for k, v in empty.items()} == {k: (0, len(plain.labels)) for k in got}
    with pytest.raises(ValueError, match="zoom must be in"):
        plain.predict_dataset_views(faces, zoom=1.0)


def test_zoom_averages_the_face_with_its_central_view(plain_and_flipped):
    """zoom=0.9: the face and its central 90 %, magnified back; with flip both are mirrored too (four views)."""
    plain, _ = plain_and_flipped
    faces = np.random.default_rng(2).integers(0, 256, (4, 40, 52), dtype=np.uint8)
    x = preprocess_faces(faces, plain.spec)
    z = zoomed(x, 0.9)
    infer = plain.backend.infer
    name = plain.backend.name
    two, four = EmotionClassifier(None, name, zoom=0.9), EmotionClassifier(None, name, flip=True, zoom=0.9)
    try:
        np.testing.assert_allclose(two.classify(faces).scores, (infer(x) + infer(z)) / 2, atol=1e-5)
        want = (infer(x) + infer(z) + infer(x[:, :, ::-1]) + infer(z[:, :, ::-1])) / 4
        np.testing.assert_allclose(four.classify(faces).scores, want, atol=1e-5)
        assert four.classify(faces[:0]).scores.shape == (0, len(four.labels))
    finally:
        two.close()
        four.close()


def test_zoomed_cuts_the_centre_and_magnifies_it():
    """A square of side 40 in the middle of a 96-px face is 50 px wide at zoom 0.8; a 3-px frame is cut away."""
    face = np.zeros((1, 96, 96, 3), np.float32)
    face[:, 28:68, 28:68] = 1.0
    out = zoomed(face, 0.8)
    assert out.shape == face.shape and out.dtype == np.float32
    row = out[0, 48, :, 0]
    assert np.count_nonzero(row > 0.5) == 50 and np.allclose(out[..., 0], out[..., 2])  # channels alike
    framed = np.zeros((2, 96, 96, 1), np.float32)
    framed[:, :3] = framed[:, -3:] = framed[:, :, :3] = framed[:, :, -3:] = 1.0
    assert zoomed(framed, 0.9).shape == framed.shape and zoomed(framed, 0.9).max() == 0.0
    assert zoomed(framed[:0], 0.9).shape == (0, 96, 96, 1)


@pytest.mark.parametrize("bad", [1.0, 1.2, 0.49, 0, "0.9", True])
def test_check_zoom_refuses_what_is_no_tighter_view(bad):
    with pytest.raises(ValueError, match=r"zoom must be in \[0.5, 1\)"):
        check_zoom(bad)
    check_zoom(None)
    check_zoom(0.5)
