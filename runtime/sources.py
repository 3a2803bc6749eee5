"""Frame sources behind one interface, opened from one string.

``open_source`` accepts an image file, a directory of images, a video file, a
camera index (``0``) or V4L2 device (``/dev/video0``), an ``rtsp://`` /
``http://`` URL, a GStreamer pipeline (anything containing ``!``, e.g. a Jetson
``nvarguscamerasrc ... ! appsink``), ``csi`` / ``csi:N`` for a Jetson CSI camera
(the ``nvarguscamerasrc`` pipeline is built by :func:`nvargus_pipeline`) or
``picamera2`` / ``picamera2:N`` for the Raspberry Pi camera stack.
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
from .errors import EdgeferError
from .images import ImageError, read_image
from .limits import DEFAULT_MAX_IMAGE_PIXELS
from .redact import redact

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".ts"})


class SourceError(EdgeferError):
    """A source cannot be opened at all (missing file or camera, unreadable single image)."""


@dataclass
class Frame:
    """One captured frame, or the error that replaced it (``image`` is then ``None``).

    ``timestamp`` is always wall-clock time (Unix epoch seconds) when the frame was read;
    ``position_s`` is the frame's position in a video file (seconds from its start), else ``None``.
    ``still``: an image on its own (a file, a folder's image), not a frame of a stream.
    """

    index: int
    timestamp: float
    image: np.ndarray | None
    origin: str
    error: str | None = None
    read_ms: float = 0.0
    position_s: float | None = None
    still: bool = False


@runtime_checkable
class FrameSource(Protocol):
    """Iterate frames; ``close`` releases the device. Used as a context manager."""

    description: str
    live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "FrameSource": ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class CaptureOptions:
    """Capture settings for the camera sources that take them (picamera2, CSI)."""

    width: int = 640
    height: int = 480
    fps: int = 30
    max_read_failures: int = 5  # consecutive failed reads before a live capture gives up
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS  # larger images and videos are refused before decoding


class _Base:
    description = ""
    #: A live source (camera, stream) ends only when it fails; a finite one (file, folder) ends at its last frame.
    live = False

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_image(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray | None, str | None]:
    try:
        return read_image(path, max_pixels=max_pixels), None
    except ImageError as exc:
        return None, str(exc)


class ImageFileSource(_Base):
    """A single image: an unreadable file is an error before anything runs."""

    def __init__(self, path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        self.path = path
        self.description = str(path)
        t0 = time.perf_counter()
        self._image, err = _read_image(path, max_pixels)
        self._read_ms = (time.perf_counter() - t0) * 1e3
        if err:
            raise SourceError(err)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, time.time(), self._image, str(self.path), read_ms=self._read_ms, still=True)


class DirectorySource(_Base):
    """Images of a folder in name order; a bad file yields an error frame and the run goes on."""

    def __init__(self, path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        self.path = path
        self.max_pixels = max_pixels
        self.description = str(path)
        self.files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"directory {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            t0 = time.perf_counter()
            img, err = _read_image(path, self.max_pixels)
            yield Frame(i, time.time(), img, str(path), err, (time.perf_counter() - t0) * 1e3, still=True)


def _open_hint(target: str | int, api: int, live: bool) -> str:
    """What to check when ``cv2.VideoCapture`` cannot open ``target``: it depends on what the target is."""
    text = str(target)
    if api == cv2.CAP_GSTREAMER or "!" in text:
        return ("check the pipeline with `gst-launch-1.0` (ending in fakesink), that every element is installed, "
                "and for a CSI camera that nvargus-daemon is running")
    if "://" in text:
        return ("check the URL, user name and password, that the camera or server is reachable from here "
                "(e.g. `ffprobe URL`) and that it serves a codec FFmpeg decodes (H.264/H.265/MJPEG)")
    if not live:
        return "check that the file is a complete video that OpenCV's FFmpeg backend can decode (e.g. `ffprobe FILE`)"
    return ("check that the camera is connected (`v4l2-ctl --list-devices`), not used by another program, and that "
            "you may open it (membership of the 'video' group)")


class VideoCaptureSource(_Base):
    """Video files, cameras, network streams and GStreamer pipelines through ``cv2.VideoCapture``.

    A live source that stops delivering is retried ``max_read_failures`` times
    (one error frame each) before the iteration ends. A file whose frames cannot be
    decoded is read on past the damage up to its declared length (one error frame per
    damaged stretch); if it still delivers fewer frames than it declares, a last error
    frame says so and :attr:`incomplete` holds the message.
    """

    def __init__(self, target: str | int, api: int = cv2.CAP_ANY, live: bool = True, max_read_failures: int = 5,
                 max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        self.target = target
        self.live = live
        self.max_read_failures = max_read_failures
        self.description = redact(str(target))  # it reaches events and logs: no URL password
        #: Why a finite source ended before its declared end (None: it did not, or it is live).
        self.incomplete: str | None = None
        self._cap = cv2.VideoCapture(target, api)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open video source {redact(repr(target))}: {_open_hint(target, api, live)}")
        width, height = (int(self._cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > max_pixels:  # each decoded frame would be this large
            self._cap.release()
            raise SourceError(f"refusing video source {self.description}: its {width} x {height} frames are over "
                              f"the {max_pixels / 1e6:g} MP budget (--max-image-pixels, [source] max_image_pixels)")
        self.declared_frames = 0 if live else max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def __iter__(self) -> Iterator[Frame]:
        if not self.live:
            yield from self._file_frames()
            return
        index, failures = 0, 0
        while True:
            t0 = time.perf_counter()
            ok, img = self._cap.read()
            read_ms = (time.perf_counter() - t0) * 1e3
            if not ok or img is None:
                failures += 1
                yield Frame(index, time.time(), None, self.description, f"read failed on {self.description}", read_ms)
                index += 1
                if failures >= self.max_read_failures:
                    return
                continue
            failures = 0
            yield Frame(index, time.time(), img, self.description, read_ms=read_ms)
            index += 1

    def _file_frames(self) -> Iterator[Frame]:
        declared = self.declared_frames
        position, good, damaged_from = 0, 0, None
        while True:
            t0 = time.perf_counter()
            ok, img = self._cap.read()
            read_ms = (time.perf_counter() - t0) * 1e3
            if ok and img is not None:
                damaged_from = None
                yield Frame(position, time.time(), img, self.description, read_ms=read_ms,
                            position_s=self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3)
                good += 1
            elif position < declared:
                # Damaged data: FFmpeg often resumes at the next intact frame, so read on up to the declared end.
                if damaged_from is None:
                    damaged_from = position
                    yield Frame(position, time.time(), None, self.description,
                                f"cannot decode frame {position} of the {declared} {self.description} declares "
                                "(corrupt data); reading on", read_ms)
            else:
                break
            position += 1
        # Containers may estimate their length; a few frames short is no damage.
        if declared and good < declared - max(2, declared // 50):
            self.incomplete = (f"{self.description} ended after {good} readable frame(s) of the {declared} it "
                               "declares: the file is cut short or corrupt")
            yield Frame(position, time.time(), None, self.description, self.incomplete)

    def close(self) -> None:
        self._cap.release()


class Picamera2Source(_Base):
    """Raspberry Pi camera (libcamera) through picamera2, delivering BGR frames."""

    live = True

    def __init__(self, camera: int = 0, size: tuple[int, int] = (640, 480), fps: int | None = None):
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
            controls = {"FrameRate": float(fps)} if fps else {}
            self._cam.configure(self._cam.create_video_configuration(
                main={"size": tuple(size), "format": "RGB888"}, controls=controls))
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


def nvargus_pipeline(
    sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0,
    out_width: int | None = None, out_height: int | None = None,
) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (Argus), ending in a BGR ``appsink`` for OpenCV.

    The sensor mode is ``width`` x ``height`` at ``fps``; ``nvvidconv`` scales to
    ``out_width`` x ``out_height`` (default: the sensor size) in hardware and applies
    ``flip`` (``flip-method`` 0-7). ``drop=true max-buffers=1`` keeps only the newest
    frame, so a slow pipeline sees fresh frames instead of a growing backlog.
    """
    for name, value in (("sensor_id", sensor_id), ("width", width), ("height", height), ("fps", fps)):
        if not isinstance(value, int) or value < (0 if name == "sensor_id" else 1):
            raise ValueError(f"nvargus_pipeline: {name} must be a {'non-negative' if name == 'sensor_id' else 'positive'}"
                             f" integer, got {value!r}")
    if flip not in range(8):
        raise ValueError(f"nvargus_pipeline: flip must be a flip-method 0-7, got {flip!r}")
    ow, oh = out_width or width, out_height or height
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw, width={ow}, height={oh}, format=BGRx ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


def gstreamer_available() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines (pip wheels cannot; JetPack's OpenCV can)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def _open_gstreamer(pipeline: str, options: CaptureOptions) -> VideoCaptureSource:
    if not gstreamer_available():
        raise SourceError(
            "this OpenCV build has no GStreamer support, so it cannot open the pipeline "
            f"{pipeline!r}; on a Jetson use JetPack's OpenCV (apt install python3-opencv, venv with "
            "--system-site-packages) instead of the opencv-python-headless wheel"
        )
    return VideoCaptureSource(pipeline, cv2.CAP_GSTREAMER, live=True, max_read_failures=options.max_read_failures,
                              max_pixels=options.max_image_pixels)


def _camera_number(text: str, prefix: str) -> int:
    _, _, number = text.partition(":")
    if number and not number.isdigit():
        raise SourceError(f"source {text!r}: the camera number after '{prefix}:' must be a non-negative integer")
    return int(number or 0)


def open_source(spec: str, options: CaptureOptions | None = None) -> FrameSource:
    """Open a frame source from its string form (see the module docstring).

    ``options`` sets the capture size and rate of the picamera2 and CSI cameras and how
    many consecutive failed reads end a live capture.
    """
    opts = options or CaptureOptions()
    text = spec.strip()
    if not text:
        raise SourceError("empty source; pass an image, folder, video, camera index, URL or GStreamer pipeline")
    if text == "picamera2" or text.startswith("picamera2:"):
        return Picamera2Source(_camera_number(text, "picamera2"), (opts.width, opts.height), opts.fps)
    if text == "csi" or text.startswith("csi:"):
        return _open_gstreamer(nvargus_pipeline(_camera_number(text, "csi"), opts.width, opts.height, opts.fps), opts)
    if "!" in text:
        return _open_gstreamer(text, opts)
    def live(target: str | int, api: int) -> VideoCaptureSource:
        return VideoCaptureSource(target, api, True, opts.max_read_failures, opts.max_image_pixels)

    if "://" in text:
        return live(text, cv2.CAP_FFMPEG)
    if text.isdigit():
        return live(int(text), cv2.CAP_ANY)
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise SourceError(f"camera {text} does not exist; list cameras with `v4l2-ctl --list-devices`")
        return live(text, cv2.CAP_V4L2)
    path = Path(text)
    if path.is_dir():
        return DirectorySource(path, opts.max_image_pixels)
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoCaptureSource(str(path), cv2.CAP_ANY, live=False, max_pixels=opts.max_image_pixels)
    return ImageFileSource(path, opts.max_image_pixels)
