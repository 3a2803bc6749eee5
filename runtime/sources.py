"""Frame sources behind one interface, opened from one string.

``open_source`` accepts an image file, a directory of images, a video file, a
camera index (``0``) or V4L2 device (``/dev/video0``), an ``rtsp://`` /
``http://`` URL, a GStreamer pipeline (anything containing ``!``, e.g. a Jetson
``nvarguscamerasrc ... ! appsink``) or ``picamera2`` / ``picamera2:N`` for the
Raspberry Pi camera stack.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import cv2
import numpy as np

from .datasets import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".ts"})


class SourceError(Exception):
    """A source cannot be opened at all (missing file or camera, unreadable single image)."""


@dataclass
class Frame:
    """One captured frame, or the error that replaced it (``image`` is then ``None``)."""

    index: int
    timestamp: float
    image: np.ndarray | None
    origin: str
    error: str | None = None
    read_ms: float = 0.0


@runtime_checkable
class FrameSource(Protocol):
    """Iterate frames; ``close`` releases the device. Used as a context manager."""

    description: str

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "FrameSource": ...

    def __exit__(self, *exc: object) -> None: ...


class _Base:
    description = ""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return None, f"cannot decode {path}: not a readable image (corrupt or unsupported format)"
    return img, None


class ImageFileSource(_Base):
    """A single image: an unreadable file is an error before anything runs."""

    def __init__(self, path: Path):
        self.path = path
        self.description = str(path)
        t0 = time.perf_counter()
        self._image, err = _read_image(path)
        self._read_ms = (time.perf_counter() - t0) * 1e3
        if err:
            raise SourceError(err)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, time.time(), self._image, str(self.path), read_ms=self._read_ms)


class DirectorySource(_Base):
    """Images of a folder in name order; a bad file yields an error frame and the run goes on."""

    def __init__(self, path: Path):
        self.path = path
        self.description = str(path)
        self.files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"directory {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            t0 = time.perf_counter()
            img, err = _read_image(path)
            yield Frame(i, time.time(), img, str(path), err, (time.perf_counter() - t0) * 1e3)


class VideoCaptureSource(_Base):
    """Video files, cameras, network streams and GStreamer pipelines through ``cv2.VideoCapture``.

    A live source that stops delivering is retried ``max_read_failures`` times
    (one error frame each) before the iteration ends.
    """

    def __init__(self, target: str | int, api: int = cv2.CAP_ANY, live: bool = True, max_read_failures: int = 5):
        self.target = target
        self.live = live
        self.max_read_failures = max_read_failures
        self.description = str(target)
        self._cap = cv2.VideoCapture(target, api)
        if not self._cap.isOpened():
            self._cap.release()
            hint = {
                True: "check that the camera is connected, not used by another program, and that you may open it "
                "(e.g. membership of the 'video' group)",
                False: "check the path and that OpenCV's FFmpeg backend can decode it",
            }[live]
            raise SourceError(f"cannot open video source {target!r}: {hint}")

    def __iter__(self) -> Iterator[Frame]:
        index, failures = 0, 0
        while True:
            t0 = time.perf_counter()
            ok, img = self._cap.read()
            read_ms = (time.perf_counter() - t0) * 1e3
            if not ok or img is None:
                if not self.live:
                    return
                failures += 1
                yield Frame(index, time.time(), None, self.description, f"read failed on {self.description}", read_ms)
                index += 1
                if failures >= self.max_read_failures:
                    return
                continue
            failures = 0
            ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3 if not self.live else time.time()
            yield Frame(index, ts, img, self.description, read_ms=read_ms)
            index += 1

    def close(self) -> None:
        self._cap.release()


class Picamera2Source(_Base):
    """Raspberry Pi camera (libcamera) through picamera2, delivering BGR frames."""

    def __init__(self, camera: int = 0, size: tuple[int, int] = (640, 480)):
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            raise SourceError(
                "the picamera2 source needs the picamera2 package, which Raspberry Pi OS ships as "
                "python3-picamera2 (apt install python3-picamera2; create the venv with --system-site-packages)"
            ) from None
        self.description = f"picamera2:{camera}"
        try:
            self._cam = Picamera2(camera)
            # picamera2's "RGB888" is stored B, G, R in memory: OpenCV's order.
            self._cam.configure(self._cam.create_video_configuration(main={"size": size, "format": "RGB888"}))
            self._cam.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError for a missing camera
            raise SourceError(f"cannot open Raspberry Pi camera {camera}: {exc}") from None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            t0 = time.perf_counter()
            try:
                img = self._cam.capture_array("main")
                err = None
            except Exception as exc:  # a dropped frame must not end the stream
                img, err = None, f"picamera2 capture failed: {exc}"
            yield Frame(index, time.time(), img, self.description, err, (time.perf_counter() - t0) * 1e3)
            index += 1

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()


def open_source(spec: str) -> FrameSource:
    """Open a frame source from its string form (see the module docstring)."""
    text = spec.strip()
    if not text:
        raise SourceError("empty source; pass an image, folder, video, camera index, URL or GStreamer pipeline")
    if text == "picamera2" or text.startswith("picamera2:"):
        _, _, cam = text.partition(":")
        return Picamera2Source(int(cam or 0))
    if "!" in text:
        return VideoCaptureSource(text, cv2.CAP_GSTREAMER, live=True)
    if "://" in text:
        return VideoCaptureSource(text, cv2.CAP_FFMPEG, live=True)
    if text.isdigit():
        return VideoCaptureSource(int(text), cv2.CAP_ANY, live=True)
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise SourceError(f"camera {text} does not exist; list cameras with `v4l2-ctl --list-devices`")
        return VideoCaptureSource(text, cv2.CAP_V4L2, live=True)
    path = Path(text)
    if path.is_dir():
        return DirectorySource(path)
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoCaptureSource(str(path), cv2.CAP_ANY, live=False)
    return ImageFileSource(path)
