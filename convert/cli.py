"""``edgefer convert`` arguments; the handler imports TensorFlow only when run."""

from __future__ import annotations

import argparse
import sys


def _targets(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _adaround_formats(text: str) -> list[str]:
    names = _targets(text)
    unknown = sorted(set(names) - {"tflite", "onnx"})
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--adaround takes INT8 formats among tflite, onnx (comma-separated), got {text!r}")
    return names


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 98, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage lies between 0 and 100, got {value:g}")
    return value


def _cmd_convert(args: argparse.Namespace) -> int:
    from edgefer.convert.exporters import ExportOptions
    from edgefer.convert.run import ConversionError, run_conversion

    options = ExportOptions(
        io_dtype=args.io_dtype, float_fallback=not args.strict_int8, opset=args.opset,
        onnx_calibration=args.onnx_calibration, onnx_symmetric=not args.onnx_asymmetric,
        onnx_centre=not args.no_onnx_centring,
        onnx_float_head=not args.onnx_int8_head,
        trt_int8_route=args.trt_int8, trt_max_batch=args.trt_max_batch,
        condition_int8_head=not args.no_int8_conditioning,
        adaround=tuple(args.adaround), adaround_iterations=args.adaround_iterations,
        adaround_faces=args.adaround_faces,
    )
    try:
        run_conversion(args.model, args.out, args.calib_data, args.val_data, args.to, args.name, args.calib_faces,
                       args.max_drop, args.val_limit_per_class, args.seed, min_agreement=args.min_agreement / 100,
                       options=options, report_path=args.report)
    except ConversionError as exc:
        print(f"edgefer: conversion failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edgefer.cli import CliError
    from edgefer.convert.temperature import calibrate_on_folders, describe
    from edgefer.runtime.manifest import ModelError

    for model in args.model:
        try:
            calibration = calibrate_on_folders(model, args.data, args.backend, args.limit_per_class,
                                               write=not args.dry_run)
        except (ModelError, FileNotFoundError, ValueError) as exc:
            raise CliError(f"{model}: {exc}") from None
        print(describe(model, calibration) + ("" if args.dry_run else "; written to its manifest"))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calibrate",
                       help="fit an artifact's probability temperature on validation faces, store it in its manifest")
    c.add_argument("--model", required=True, action="append",
                   help="artifact with its manifest (.tflite/.onnx/...); repeat for several")
    c.add_argument("--data", required=True,
                   help="labelled VALIDATION faces (class folders, or a root with val/; never a test set)")
    c.add_argument("--backend", default=None, help="runtime backend to score with (default: the format's own)")
    c.add_argument("--limit-per-class", type=int, default=None)
    c.add_argument("--dry-run", action="store_true", help="print the fitted temperature, leave the manifest alone")
    c.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("convert",
                       help="Keras model -> TFLite / ONNX / TensorRT with manifests, checked on validation data")
    p.add_argument("--model", required=True,
                   help="model.keras written by `edgefer train` (meta.json beside it); on a GPU device, an .onnx "
                        "artifact with its manifest to build TensorRT engines from")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default="model", help="artifact base name (<name>_<precision>.<suffix>)")
    p.add_argument("--to", type=_targets, default=["tflite", "onnx"],
                   help="comma-separated FORMAT[:PRECISION] targets: tflite[:fp32|fp16|dynamic|int8], "
                        "onnx[:fp32|int8], tensorrt[:fp16|int8], or 'all' (every TFLite and ONNX precision); "
                        "a bare format means tflite:int8, onnx:fp32, tensorrt:int8 (default tflite,onnx)")
    p.add_argument("--calib-data", help="training faces for INT8 calibration (class folders or CSV); required for "
                                        "INT8 targets of a Keras model and for the TensorRT entropy route")
    p.add_argument("--calib-faces", type=int, default=300, help="how many real faces calibrate INT8 (class-stratified)")
    p.add_argument("--val-data", required=True, help="labelled validation faces for the parity check")
    p.add_argument("--val-limit-per-class", type=int, default=None)
    p.add_argument("--report", default=None,
                   help="also write the JSON conversion report here (e.g. results/conversion/NAME.json)")
    p.add_argument("--seed", type=int, default=0)
    gate = p.add_argument_group("parity gate (each artifact vs the Keras model)")
    gate.add_argument("--max-drop", type=float, default=1.0, help="fail if accuracy drops more than this many points")
    gate.add_argument("--min-agreement", type=_percent, default=98.0,
                      help="fail if the top-1 class agrees with Keras on fewer than this %% of faces (default 98)")
    q = p.add_argument_group("quantisation")
    q.add_argument("--io-dtype", choices=("int8", "uint8"), default="int8", help="TFLite INT8 input/output type")
    q.add_argument("--strict-int8", action="store_true",
                   help="fail instead of letting ops without int8 kernels (COS) run in float in a TFLite INT8 model")
    q.add_argument("--no-int8-conditioning", action="store_true",
                   help="keep head inputs that vary less than half an int8 step (their huge folded SVM weights "
                        "then set the INT8 kernel scale); by default INT8 artifacts replace them by their mean")
    q.add_argument("--adaround", type=_adaround_formats, default=[], metavar="FORMATS",
                   help="comma-separated INT8 formats (tflite, onnx) whose weights are rounded by AdaRound, fitted "
                        "to each format's activation quantisation, instead of to nearest; single-chain models only "
                        "(not the hybrid); about 5 min per format for the shipped model on 2 cores")
    q.add_argument("--adaround-iterations", type=int, default=1000, help="optimiser steps per layer for --adaround")
    q.add_argument("--adaround-faces", type=int, default=1024,
                   help="training faces (not the calibration sample) the --adaround reconstruction is fitted on")
    q.add_argument("--opset", type=int, default=13, help="ONNX opset (>= 13)")
    q.add_argument("--onnx-calibration", choices=("minmax", "entropy", "percentile"), default="minmax",
                   help="onnxruntime static-calibration method for ONNX INT8")
    q.add_argument("--onnx-asymmetric", action="store_true",
                   help="asymmetric int8 activations in the QDQ model (CPU only: TensorRT needs symmetric)")
    q.add_argument("--no-onnx-centring", action="store_true",
                   help="symmetric QDQ model: keep ReLU6 outputs in [0, 6] instead of centring them on zero "
                        "(centring halves their int8 step at the cost of explicit Pad nodes before padded convs)")
    q.add_argument("--onnx-int8-head", action="store_true",
                   help="quantise the QDQ model's linear head too (its inputs INT8-conditioned, as in TFLite) "
                        "instead of keeping it in float with its inputs equalised per channel")
    t = p.add_argument_group("TensorRT (built on the GPU device that will run the engine)")
    t.add_argument("--trt-int8", choices=("qdq", "entropy"), default="qdq",
                   help="INT8 engine from the QDQ ONNX model (TensorRT 10) "
                        "or via the entropy calibrator (TensorRT 8.x)")
    t.add_argument("--trt-max-batch", type=int, default=32, help="largest batch the engine's profile accepts")
    p.set_defaults(func=_cmd_convert)
