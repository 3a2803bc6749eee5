"""``edgefer detect`` / ``eval`` arguments; numpy, OpenCV and one backend only."""

from __future__ import annotations

import argparse
import sys

from edgefer.cli import CliError


def _haar_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("face detector (Haar cascade)")
    g.add_argument("--cascade", help="cascade XML (default: found in cv2.data or /usr/share/opencv4/haarcascades)")
    g.add_argument("--scale-factor", type=float, default=1.1)
    g.add_argument("--min-neighbors", type=int, default=5)
    g.add_argument("--min-face", type=int, default=30, help="smallest face side in frame pixels")
    g.add_argument("--max-face", type=int, default=None, help="largest face side in frame pixels")
    g.add_argument("--detect-width", type=int, default=640, help="detect on frames downscaled to this width (0: never)")


def _runtime_errors():
    from edgefer.runtime.backends import BackendUnavailable
    from edgefer.runtime.detect import DetectorError
    from edgefer.runtime.manifest import ModelError
    from edgefer.runtime.sources import SourceError

    return (BackendUnavailable, DetectorError, ModelError, SourceError, ValueError, FileNotFoundError)


def _cmd_detect(args: argparse.Namespace) -> int:
    from edgefer.runtime.commands import run_detect
    from edgefer.runtime.detect import HaarConfig

    haar = HaarConfig(args.scale_factor, args.min_neighbors, args.min_face, args.max_face,
                      args.detect_width or None, args.cascade)
    try:
        run_detect(args.source, args.model, args.backend, args.threads, haar, args.max_frames,
                   summary_out=None if args.quiet else sys.stderr)
    except _runtime_errors() as exc:
        raise CliError(str(exc)) from None
    return 0


def _register_detect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces and classify emotions; one JSON object per frame on stdout")
    p.add_argument("--source", required=True,
                   help="image, folder of images, video file, camera index, /dev/videoN, rtsp:// URL, "
                        "GStreamer pipeline (contains '!') or picamera2[:N]")
    p.add_argument("--model", help="artifact (.tflite, .onnx); default: the shipped model")
    p.add_argument("--backend", help="litert or onnx (default: from the model's suffix)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no timing summary on stderr")
    _haar_args(p)
    p.set_defaults(func=_cmd_detect)


def _cmd_eval(args: argparse.Namespace) -> int:
    from edgefer.runtime.commands import print_eval, run_eval

    try:
        summary = run_eval(args.model, args.data, args.backend, args.threads, args.limit_per_class)
    except _runtime_errors() as exc:
        raise CliError(str(exc)) from None
    print_eval(summary, args.json)
    return 0


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy, macro-F1 and confusion matrix of an artifact on cropped faces")
    p.add_argument("--model", help="artifact (.tflite, .onnx); default: the shipped model")
    p.add_argument("--data", required=True, help="class-folder dataset of cropped faces (<data>/<class>/*.jpg)")
    p.add_argument("--backend", help="litert or onnx (default: from the model's suffix)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_cmd_eval)


def register(sub: argparse._SubParsersAction) -> None:
    _register_detect(sub)
    _register_eval(sub)
