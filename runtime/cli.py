"""``edgefer detect`` / ``eval`` arguments; numpy, OpenCV and one backend only."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from edgefer.cli import CliError
from edgefer.runtime.limits import (DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT, MAX_SIDE, float_between,
                                    int_between, max_threads)

if TYPE_CHECKING:
    from edgefer.runtime.detect import DetectorConfig
    from edgefer.runtime.stills import StillConfig
    from edgefer.runtime.tracking import TrackConfig


def _max_pixels_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-image-pixels", type=int_between(1, MAX_IMAGE_PIXELS_LIMIT),
                   default=DEFAULT_MAX_IMAGE_PIXELS, metavar="N",
                   help="refuse images (and video frames) with more pixels, before decoding them "
                        f"(default: {DEFAULT_MAX_IMAGE_PIXELS:,})")


def _haar_args(p: argparse.ArgumentParser) -> None:
    from edgefer.runtime.detect import HaarConfig
    from edgefer.runtime.tracking import TrackConfig

    g = p.add_argument_group("face detector", "images and folders are detected as still images, streams every "
                                              "N-th frame with tracking between (docs/detection.md)")
    g.add_argument("--detector", choices=("haar", "yunet"), default="haar",
                   help="haar (OpenCV cascade, default) or yunet (OpenCV's CNN detector)")
    g.add_argument("--yunet-model",
                   help="face_detection_yunet_2023mar.onnx (default: $EDGEFER_YUNET, then "
                        "~/.cache/edgefer/face_detection_yunet_2023mar.onnx)")
    g.add_argument("--score-threshold", type=float_between(0, 1, True, True), default=0.7,
                   help="yunet: minimum face score")
    g.add_argument("--cascade", help="haar: cascade XML (default: found in cv2.data or /usr/share/opencv4/haarcascades)")
    g.add_argument("--scale-factor", type=float_between(1, 2, low_open=True), default=HaarConfig.scale_factor,
                   help="haar: pyramid step")
    g.add_argument("--min-neighbors", type=int_between(0, 1000), default=HaarConfig.min_neighbors,
                   help="haar: overlapping hits a face needs")
    g.add_argument("--verify", action=argparse.BooleanOptionalAction, default=HaarConfig.verify,
                   help="haar: confirm each face with a second cascade (--verify-cascade)")
    g.add_argument("--verify-cascade",
                   help="haar: the confirming cascade XML (default: OpenCV's haarcascade_frontalface_alt.xml)")
    g.add_argument("--min-face-windows", type=float_between(1, 4), default=HaarConfig.min_face_windows,
                   help="haar: the frame is shrunk until the smallest face is this many 24-pixel cascade windows "
                        "(with --scale-factor 1.1 --min-neighbors 5 --no-verify, 1.5 is the previous, slower "
                        "default)")
    g.add_argument("--min-face", type=int_between(1, MAX_SIDE), default=None,
                   help="smallest face side in pixels of the frame (default: still images 48, streams haar 24, "
                        "yunet 16)")
    g.add_argument("--max-face", type=int_between(1, MAX_SIDE), default=None, help="largest face side in frame pixels")
    g.add_argument("--min-face-ratio", type=float_between(0, 1, high_open=True), default=None,
                   help="smallest face side as a fraction of the frame's shorter side; the larger of the two "
                        "limits wins (default: still images 0.02, streams 0.1)")
    g.add_argument("--max-face-ratio", type=float_between(0, 1, low_open=True), default=1.0,
                   help="largest face side as a fraction of the frame's shorter side")
    g.add_argument("--detect-width", type=int_between(0, MAX_SIDE), default=None,
                   help="streams: shrink frames to at most this width, never below what the smallest face needs "
                        "(default: haar as far as the smallest face allows, yunet 320; 0: never shrink)")
    g.add_argument("--pad", type=float_between(0, 1), default=None,
                   help="still images: when no face is found, look again with this border (fraction of the longer "
                        "side) for a face that fills the image (default 0.25; 0: no second look)")
    g.add_argument("--detect-every", type=int_between(1, 1000), default=TrackConfig.detect_every,
                   help="run the detector every N frames of a stream and track the faces in between (1: every frame)")
    g.add_argument("--track-min-score", type=float_between(0, 1), default=TrackConfig.min_score,
                   help="tracking: match score below which a face counts as lost (then detect on the next frame)")


def detector_config(args: argparse.Namespace) -> tuple[DetectorConfig, TrackConfig]:
    """The detector and tracking configuration the ``detect`` options describe."""
    from edgefer.runtime.detect import HaarConfig, YuNetConfig
    from edgefer.runtime.tracking import TrackConfig

    sizes = {"max_face": args.max_face, "max_face_ratio": args.max_face_ratio}
    # Unset options keep each detector's own defaults.
    given = {"min_face": args.min_face, "min_face_ratio": args.min_face_ratio, "detect_width": args.detect_width}
    sizes.update({k: v for k, v in given.items() if v is not None})
    if args.detector == "yunet":
        config = YuNetConfig(args.yunet_model or "", score_threshold=args.score_threshold, **sizes)
    else:
        config = HaarConfig(args.scale_factor, args.min_neighbors, cascade=args.cascade,
                            min_face_windows=args.min_face_windows, verify=args.verify,
                            verify_cascade=args.verify_cascade, **sizes)
    return config, TrackConfig(detect_every=args.detect_every, min_score=args.track_min_score)


def _backend_args(p: argparse.ArgumentParser) -> None:
    from edgefer.runtime.backends import BACKEND_NAMES
    from edgefer.runtime.classifier import DEFAULT_ZOOM, MIN_ZOOM

    p.add_argument("--backend", help=f"{', '.join(BACKEND_NAMES)} (default: from the model's suffix)")
    p.add_argument("--threads", type=int_between(1, max_threads), default=None,
                   help="inference threads (default: the backend's; at most 4 per core)")
    p.add_argument("--no-flip", dest="flip", action="store_false",
                   help="classify each face without its mirror image (default: the face and its mirror image in one "
                        "batch, scores averaged: more accurate, for a second inference per face; docs/runtime.md, "
                        "'Test-time views')")
    zoom = p.add_mutually_exclusive_group()
    zoom.add_argument("--zoom", type=float_between(MIN_ZOOM, 1.0, high_open=True), default=DEFAULT_ZOOM, metavar="Z",
                      help="the tighter view: each face also classified cut to its central Z of width and height, "
                           f"scores averaged (default {DEFAULT_ZOOM:g}; with flip, four views a face in one batch)")
    zoom.add_argument("--no-zoom", dest="zoom", action="store_const", const=None,
                      help="no tighter view: each face (and, with flip, its mirror image) classified as cut")
    p.add_argument("--providers", metavar="LIST",
                   help="onnx backend: onnxruntime execution providers in order, e.g. 'cuda,cpu' (short names "
                        "tensorrt, cuda, cpu, or full names); default: TensorRT, then CUDA where this "
                        "onnxruntime has them, then CPU")


def _providers(args: argparse.Namespace) -> list[str] | None:
    from edgefer.runtime.backends.onnx import parse_providers

    return parse_providers(args.providers)


def still_config(args: argparse.Namespace) -> StillConfig:
    """How still images are detected: the still defaults, with the size options that were given."""
    from edgefer.runtime.stills import StillConfig

    given = {"min_face": args.min_face, "min_face_ratio": args.min_face_ratio, "pad": args.pad}
    return StillConfig(**{k: v for k, v in given.items() if v is not None})


def _runtime_errors():
    from edgefer.runtime.backends import BackendUnavailable
    from edgefer.runtime.detect import DetectorError
    from edgefer.runtime.manifest import ModelError
    from edgefer.runtime.errors import EdgeferError
    from edgefer.runtime.sources import SourceError

    return (EdgeferError, BackendUnavailable, DetectorError, ModelError, SourceError, ValueError, FileNotFoundError)


def _positional_or_option(command: str, positional: str | None, option: str | None, name: str, example: str) -> str:
    """The one input of ``command``, given as an argument or as ``--name`` (both are accepted; they must agree)."""
    given = [v for v in (positional, option) if v is not None]
    if not given:
        raise CliError(f"{command}: no {name} given: {example} (see --help)")
    if len(given) == 2 and given[0] != given[1]:
        raise CliError(f"{command}: two {name}s given, {given[0]!r} and --{name} {given[1]!r}: name one")
    return given[0]


def _cmd_detect(args: argparse.Namespace) -> int:
    from edgefer.runtime.commands import run_detect
    from edgefer.runtime.sources import CaptureOptions

    if args.quiet:  # also the backends' INFO lines (LiteRT's XNNPACK notice, the onnx providers)
        logging.getLogger("edgefer").setLevel(logging.WARNING)
    source = _positional_or_option(
        "detect", args.source, args.source_option, "source",
        "name an image, a folder, a video, a camera index or a stream URL, e.g. `edgefer detect photo.jpg` or "
        "`edgefer detect 0`")
    try:
        detector, tracking = detector_config(args)
        run_detect(source, args.model, args.backend, args.threads, detector, args.max_frames,
                   summary_out=None if args.quiet else sys.stderr, tracking=tracking, providers=_providers(args),
                   annotate=args.annotate, show=args.show, still=still_config(args), flip=args.flip, zoom=args.zoom,
                   capture=CaptureOptions(max_image_pixels=args.max_image_pixels))
    except _runtime_errors() as exc:
        raise CliError(str(exc)) from None
    return 0


def _register_detect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces and classify emotions; one JSON object per frame on stdout")
    p.add_argument("source", nargs="?", metavar="SOURCE",
                   help="image, folder of images, video file, camera index, /dev/videoN, rtsp:// URL, "
                        "GStreamer pipeline (contains '!'), picamera2[:N] (Raspberry Pi camera) or "
                        "csi[:N] (Jetson CSI camera)")
    p.add_argument("--source", dest="source_option", metavar="SOURCE", help="the same as SOURCE")
    p.add_argument("--model", help="artifact (.tflite, .onnx); default: the shipped model")
    _backend_args(p)
    p.add_argument("--max-frames", type=int_between(0), default=None)
    p.add_argument("--quiet", action="store_true", help="no timing summary or INFO logging on stderr")
    p.add_argument("--annotate", metavar="OUT",
                   help="also write the frames with boxes, labels and probability bars: OUT.jpg/.png (one picture), "
                        "OUT.mp4/.avi (one video) or a folder (pictures keep their names, videos become NAME.mp4)")
    p.add_argument("--show", action="store_true",
                   help="show the annotated frames in a window (q or Esc stops); needs OpenCV with a GUI, which "
                        "the default opencv-python-headless wheel lacks")
    _max_pixels_arg(p)
    _haar_args(p)
    p.set_defaults(func=_cmd_detect)


def _cmd_eval(args: argparse.Namespace) -> int:
    from edgefer.runtime.commands import print_eval, run_eval

    data = _positional_or_option("eval", args.data, args.data_option, "data",
                                 "name a class-folder dataset of cropped faces, e.g. `edgefer eval faces/`")
    try:
        summary = run_eval(args.model, data, args.backend, args.threads, args.limit_per_class,
                           providers=_providers(args), max_pixels=args.max_image_pixels, flip=args.flip,
                           zoom=args.zoom)
    except _runtime_errors() as exc:
        raise CliError(str(exc)) from None
    print_eval(summary, args.json)
    return 0


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy, macro-F1 and confusion matrix of an artifact on cropped faces")
    p.add_argument("--model", help="artifact (.tflite, .onnx); default: the shipped model")
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="class-folder dataset of cropped faces (DATA/<class>/*.jpg)")
    p.add_argument("--data", dest="data_option", metavar="DATA", help="the same as DATA")
    _backend_args(p)
    p.add_argument("--limit-per-class", type=int_between(1), default=None)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    _max_pixels_arg(p)
    p.set_defaults(func=_cmd_eval)


def register(sub: argparse._SubParsersAction) -> None:
    _register_detect(sub)
    _register_eval(sub)
    __import__("edgefer.runtime.serve.cli", fromlist=["register"]).register(sub)
