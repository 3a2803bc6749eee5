"""`edgefer detect --annotate` / `--show`: pictures of what was found."""

from __future__ import annotations

import io
import shutil

import cv2
import numpy as np
import pytest

from edgefer import Face
from edgefer.cli import main
from edgefer.runtime.annotate import AnnotateError, draw_faces, has_gui, require_gui
from edgefer.runtime.commands import run_detect


def _face(box=(20, 20, 60, 60)):
    probs = {"angry": 0.05, "happy": 0.9, "sad": 0.05}
    return Face(box, "happy", probs, {k: v - 0.5 for k, v in probs.items()})


def test_draw_faces_marks_the_box_and_leaves_the_input_alone():
    img = np.full((200, 300, 3), 30, np.uint8)
    out = draw_faces(img, [_face()])
    assert out.shape == img.shape and (img == 30).all()
    assert (out[20, 30:70] != 30).any()  # the box's top edge
    assert (out[25:90, 90:300] != 30).any()  # the probability panel beside it
    grey = draw_faces(np.full((100, 100), 30, np.uint8), [])
    assert grey.shape == (100, 100, 3)


def test_annotate_image_in_image_out(media, tmp_path):
    out = tmp_path / "justin-annotated.jpg"
    run_detect(str(media / "justin.jpg"), out=io.StringIO(), summary_out=None, annotate=str(out))
    picture = cv2.imread(str(out))
    original = cv2.imread(str(media / "justin.jpg"))
    assert picture.shape == original.shape
    assert np.abs(picture.astype(int) - original).mean() > 1.0  # something was drawn


def test_annotate_folder_in_folder_out(media, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("justin.jpg", "no-faces.jpg"):
        shutil.copy(media / name, src / name)
    (src / "broken.jpg").write_bytes(b"not an image")
    run_detect(str(src), out=io.StringIO(), summary_out=None, annotate=str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["justin.jpg", "no-faces.jpg"]


def test_annotate_video_in_video_out(media, tmp_path):
    out = tmp_path / "clip.avi"
    run_detect(str(media / "fer_test.mp4"), out=io.StringIO(), summary_out=None, max_frames=8, annotate=str(out))
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 8


def test_show_without_gui_says_what_to_do(media, capsys):
    if has_gui():
        pytest.skip("this OpenCV build has a GUI; the headless message cannot be shown")
    with pytest.raises(AnnotateError, match="opencv-python-headless"):
        require_gui()
    assert main(["detect", "--source", str(media / "justin.jpg"), "--show"]) == 2
    assert "--show needs an OpenCV build with a GUI" in capsys.readouterr().err
