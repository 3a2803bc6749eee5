"""Pictures of what the recognizer saw: boxes, labels and a probability bar per face.

``edgefer detect --annotate OUT`` writes them (image in, image out; video in, video out;
folder in, folder out) and ``--show`` puts them in a window when OpenCV has a GUI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .datasets import IMAGE_SUFFIXES
from .errors import EdgeferError
from .recognizer import Face
from .sources import VIDEO_SUFFIXES, Frame

# One colour per emotion (BGR), readable on light and dark backgrounds.
COLOURS = {
    "angry": (40, 40, 220), "disgust": (40, 150, 60), "fear": (160, 60, 160), "happy": (0, 190, 250),
    "neutral": (180, 180, 180), "sad": (200, 120, 30), "surprise": (0, 140, 255),
}
_DEFAULT_COLOUR = (0, 220, 0)


class AnnotateError(EdgeferError):
    """Annotated frames cannot be written or shown (bad output path, no GUI, no video encoder)."""


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int],
          thickness: int) -> None:
    # A dark outline under the text keeps it readable on any background.
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_faces(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box, label and probability, and a bar per emotion beside it."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    if out.ndim == 3 and out.shape[2] == 1:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    height, width = out.shape[:2]
    short = min(height, width)
    taken = [tuple(f.box) for f in faces]  # panels avoid every face and every panel already drawn
    for face in faces:
        x, y, w, h = face.box
        colour = COLOURS.get(face.label, _DEFAULT_COLOUR)
        line = max(1, round(short / 250))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, line, cv2.LINE_AA)
        scale = max(0.4, min(0.9, w / 160))
        _text(out, f"{face.label} {face.probability:.0%}", (x, max(y - 6, int(22 * scale))), scale, colour,
              max(1, round(scale * 1.5)))
        taken.append(_bars(out, face, scale, taken))
    return out


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _bars(out: np.ndarray, face: Face, scale: float, taken: list) -> tuple[int, int, int, int]:
    """A panel of horizontal bars, one per emotion, beside the box where it covers no face; returns its rectangle."""
    height, width = out.shape[:2]
    x, y, w, h = face.box
    names = list(face.probabilities)
    font = max(0.35, min(0.6, 0.6 * scale))
    row = max(12, int(round(40 * font)))
    label_w = max(cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, font, 1)[0][0] for n in names) + 6
    bar_w = int(label_w * 1.6)
    panel_w, panel_h = label_w + bar_w + 8, row * len(names) + 6
    top = min(max(0, y), max(0, height - panel_h))
    candidates = [(x + w + 8, top), (x - 8 - panel_w, top), (x, y + h + 8), (x, y - 8 - panel_h)]
    inside = [(px, py) for px, py in candidates
              if 0 <= px and px + panel_w <= width and 0 <= py and py + panel_h <= height]
    free = [(px, py) for px, py in inside if not any(_overlaps((px, py, panel_w, panel_h), t) for t in taken)]
    px, py = (free or inside or [(max(0, min(x + w + 8, width - panel_w)), top)])[0]
    region = out[py : py + panel_h, px : px + panel_w]
    region[:] = (region * 0.35).astype(out.dtype)  # darken behind the panel
    for i, name in enumerate(names):
        p = face.probabilities[name]
        top = py + 3 + i * row
        colour = COLOURS.get(name, _DEFAULT_COLOUR)
        cv2.putText(out, name, (px + 4, top + row - 5), cv2.FONT_HERSHEY_SIMPLEX, font,
                    colour if name == face.label else (255, 255, 255), 1, cv2.LINE_AA)
        x0 = px + label_w
        cv2.rectangle(out, (x0, top + 3), (x0 + bar_w, top + row - 3), (90, 90, 90), 1)
        filled = int(round(bar_w * p))
        if filled > 0:
            cv2.rectangle(out, (x0, top + 3), (x0 + filled, top + row - 3), colour, -1)
    return (px, py, panel_w, panel_h)


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (the opencv-python-headless wheel cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "NO", "")
    return False


def require_gui() -> None:
    """Raise :class:`AnnotateError` with what to do when ``--show`` cannot open a window."""
    if not has_gui():
        raise AnnotateError(
            "--show needs an OpenCV build with a GUI, and this one has none (edgefer installs the headless "
            "wheel, opencv-python-headless, which never opens windows). Either write the pictures with "
            "--annotate OUT, or on a desktop replace the wheel: pip uninstall opencv-python-headless && "
            "pip install 'opencv-python<5'"
        )


class AnnotatedOutput:
    """Writes annotated frames: to one image, one video, or a folder (images keep their names).

    ``out`` ending in an image suffix: one picture (later frames get ``_<frame>`` added);
    ending in a video suffix: one video; anything else: a folder, where a picture keeps its
    file name and the frames of a video, camera or stream go into ``<name>.mp4``.
    """

    def __init__(self, out: str | Path, fps: float = 15.0):
        self.out = Path(out)
        self.fps = fps if fps and fps > 0 else 15.0
        suffix = self.out.suffix.lower()
        self.mode = "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else "folder"
        parent = self.out.parent if self.mode != "folder" else self.out
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AnnotateError(f"cannot create {parent} for --annotate: {exc.strerror or exc}") from None
        self._video: cv2.VideoWriter | None = None
        self._video_path: Path | None = None
        self.written: list[Path] = []

    def write(self, frame: Frame, picture: np.ndarray) -> None:
        """Write one annotated frame."""
        origin = Path(frame.origin)
        is_still = origin.suffix.lower() in IMAGE_SUFFIXES
        if self.mode == "video" or (self.mode == "folder" and not is_still):
            path = self.out if self.mode == "video" else self.out / f"{_stem(frame.origin)}.mp4"
            self._write_video(path, picture)
            return
        if self.mode == "image":
            path = self.out if not self.written else self.out.with_name(
                f"{self.out.stem}_{frame.index:06d}{self.out.suffix}")
        else:
            path = self.out / origin.name
        if not cv2.imwrite(str(path), picture):
            raise AnnotateError(f"cannot write {path}: check the folder is writable and the suffix is an image type")
        self.written.append(path)

    def _write_video(self, path: Path, picture: np.ndarray) -> None:
        size = (picture.shape[1], picture.shape[0])
        if self._video is None or self._video_path != path:
            self._close_video()
            fourcc = cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
            self._video = cv2.VideoWriter(str(path), fourcc, self.fps, size)
            if not self._video.isOpened():
                self._video = None
                raise AnnotateError(f"OpenCV cannot write the video {path}; try an .avi (MJPG) or .mp4 name")
            self._video_path, self._size = path, size
            self.written.append(path)
        if size != self._size:  # a stream that changed resolution: keep the video's size
            picture = cv2.resize(picture, self._size, interpolation=cv2.INTER_AREA)
        self._video.write(picture)

    def _close_video(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None

    def close(self) -> None:
        self._close_video()


def _stem(origin: str) -> str:
    """A file name for the video of a source: ``clip.mp4`` -> ``clip``; camera ``0`` -> ``camera0``."""
    name = Path(origin).stem if "://" not in origin and "!" not in origin else "stream"
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "frames"
    return f"camera{name}" if name.isdigit() else name


class Window:
    """``--show``: one OpenCV window; ``q`` or Esc asks the run to stop."""

    NAME = "edgefer"

    def __init__(self) -> None:
        require_gui()
        cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL)

    def show(self, picture: np.ndarray, wait_ms: int = 1) -> bool:
        """Show a picture; False when the user pressed q or Esc (or closed the window)."""
        cv2.imshow(self.NAME, picture)
        key = cv2.waitKey(wait_ms) & 0xFF
        closed = cv2.getWindowProperty(self.NAME, cv2.WND_PROP_VISIBLE) < 1
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        cv2.destroyWindow(self.NAME)
