"""``edgefer convert`` arguments; the handler imports TensorFlow only when run."""

from __future__ import annotations

import argparse
import sys



def _cmd_convert(args: argparse.Namespace) -> int:
    from edgefer.convert.run import ConversionError, run_conversion

    try:
        run_conversion(args.model, args.out, args.calib_data, args.val_data, args.to, args.name, args.calib_faces,
                       args.max_drop, args.val_limit_per_class, args.seed)
    except ConversionError as exc:
        print(f"edgefer: conversion failed: {exc}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="Keras model -> INT8 TFLite / ONNX with manifests, checked on validation data")
    p.add_argument("--model", required=True, help="model.keras written by `edgefer train` (meta.json beside it)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default="model", help="artifact base name (<name>_<precision>.<suffix>)")
    p.add_argument("--to", type=lambda s: [v for v in s.split(",") if v], default=["tflite", "onnx"],
                   help="comma-separated formats (default tflite,onnx)")
    p.add_argument("--calib-data", required=True, help="training faces for INT8 calibration (class folders or CSV)")
    p.add_argument("--calib-faces", type=int, default=300)
    p.add_argument("--val-data", required=True, help="labelled validation faces for the parity check")
    p.add_argument("--val-limit-per-class", type=int, default=None)
    p.add_argument("--max-drop", type=float, default=1.0, help="fail if accuracy drops more than this many points")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_convert)
