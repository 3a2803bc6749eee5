"""``edgefer train`` and ``edgefer baseline`` arguments; the handlers import TensorFlow/scikit-learn only when run."""

from __future__ import annotations

import argparse

from edgefer.runtime.limits import float_between, int_between

from .precision import PRECISIONS


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _describe(meta: dict) -> str:
    m = meta["metrics"]
    side = "test" if any(k.startswith("test_") for k in m) else "val"
    parts = [f"{key.removeprefix(side + '_')} {v['accuracy'] * 100:.2f} %" for key, v in m.items()
             if key.startswith(side + "_") and isinstance(v, dict)]
    text = f"{side} accuracy: " + ", ".join(parts)
    if "svm_minus_softmax_points" in m:
        text += f" (SVM - softmax on validation: {m['svm_minus_softmax_points']:+.2f} points)"
    return text


def _cmd_train(args: argparse.Namespace) -> int:
    from edgefer.cli import CliError
    from edgefer.train.trainer import TrainConfig, run_training

    cfg = TrainConfig(
        data=args.data, out=args.out, val=args.val, input_size=args.input_size, alpha=args.alpha,
        weights=args.weights, epochs=args.epochs, batch_size=args.batch_size, workers=args.workers, lr=args.lr,
        label_smoothing=args.label_smoothing, mixup=args.mixup,
        svm_c=args.svm_c, svm_cv=args.svm_cv, augment=not args.no_augment,
        limit_per_class=args.limit_per_class, seed=args.seed, resume=args.resume,
        checkpoint_minutes=args.checkpoint_minutes, precision=args.precision, precise_bn=args.precise_bn,
        bn_momentum=args.bn_momentum, dropout=args.dropout,
        dataset=args.dataset, protocol=args.protocol, angles=args.angles, folds=args.folds, fold=args.fold,
        test_fraction=args.test_fraction, model=args.model, head=args.head, fc_width=args.fc_width,
        projection=args.projection, hybrid_parts=args.hybrid_parts, hybrid_head_epochs=args.hybrid_head_epochs,
        rbf_c=args.rbf_c, rbf_gamma=args.rbf_gamma, rff_components=args.rff_components, balance=args.balance,
        augment_config=args.augment_config, init_from=args.init_from, add_faces=args.add_faces,
        teacher=args.teacher, distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
        add_fraction=args.add_fraction, kdef_no_face=args.kdef_no_face,
        contempt=args.contempt, svm_kernels=args.svm_kernels,
    )
    try:
        meta = run_training(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(f"{_describe(meta)}; model written to {args.out}/model.keras"
          if meta["dataset"]["fold"] is None and "kfold" not in meta else f"{_describe(meta)}; folds in {args.out}")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from edgefer.cli import CliError
    from edgefer.train.classical import BaselineConfig, run_baseline
    from edgefer.train.config import DEFAULT_INPUT_SIZE

    cfg = BaselineConfig(data=args.data, out=args.out, dataset=args.dataset, protocol=args.protocol,
                         features=args.features, head=args.head,
                         input_size=args.input_size or DEFAULT_INPUT_SIZE, seed=args.seed,
                         svm_c=args.svm_c, pca_components=args.pca_components, folds=args.folds,
                         limit_per_class=args.limit_per_class, kdef_no_face=args.kdef_no_face,
                         contempt=args.contempt)
    try:
        meta = run_baseline(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(f"{_describe(meta)}; written to {args.out}")
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    import numpy as np

    from edgefer.cli import CliError
    from edgefer.train.corpora import LOADERS, load_corpus
    from edgefer.train.pack import check_out, loader_options, save_pack

    given: dict = {}
    if args.angles is not None:
        given["angles"] = tuple(args.angles)
    if args.kdef_no_face is not None:
        given["no_face"] = args.kdef_no_face
    if args.contempt is not None:
        given["contempt"] = args.contempt == "keep"
    if args.size < 8:
        raise CliError(f"--size {args.size}: give the face side in pixels of the runs that will use the pack (e.g. 48 "
                       "or 96)")
    size = (args.size, args.size)
    try:
        check_out(args.out)
        options = loader_options(LOADERS[args.layout], given)
        corpus = load_corpus(args.layout, args.root, size, **given)
        out = save_pack(corpus, args.out, args.layout, args.root, size, options)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    people = "unknown people" if corpus.subjects is None else f"{len(np.unique(corpus.subjects))} people"
    print(f"{out}: {len(corpus)} faces of {people}, {size[0]}x{size[1]}, {out.stat().st_size / 2**20:.1f} MiB")
    return 0


def _cmd_eval_cross(args: argparse.Namespace) -> int:
    import shlex

    from edgefer.cli import CliError
    from edgefer.runtime.manifest import ModelError
    from edgefer.train.cross_eval import markdown, run_cross_eval, write_result

    if args.model:
        models = [(m, args.backend) for m in args.model]
    else:
        from edgefer.runtime.classifier import installed_defaults

        models = [(str(path), name) for name, path in installed_defaults().items()]
        if not models:
            raise CliError("no shipped model for any installed backend; pass --model PATH")
    try:
        result = run_cross_eval(models, args.fer2013, args.kdef, args.ckplus, args.crop_size, args.kdef_angles,
                                args.peer_python, args.assume_unseen, args.flip, args.zoom)
    except (ValueError, FileNotFoundError, ModelError) as exc:
        raise CliError(str(exc)) from None
    print(markdown(result))
    if args.json:
        flags = [("--model", m) for m in args.model or []] + [
            (flag, value) for flag, value in (
                ("--backend", args.backend), ("--fer2013", args.fer2013), ("--kdef", args.kdef),
                ("--ckplus", args.ckplus), ("--kdef-angles", ",".join(args.kdef_angles)),
                ("--crop-size", str(args.crop_size)), ("--peer-python", args.peer_python), ("--json", args.json))
            if value]
        command = ["edgefer", "eval-cross", *[part for pair in flags for part in pair]]
        command += ["--flip"] * args.flip + (["--zoom", f"{args.zoom:g}"] if args.zoom is not None else [])
        command += ["--assume-unseen"] * args.assume_unseen
        write_result(result, args.json, shlex.join(command))
        print(f"written to {args.json}")
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    from edgefer.train.corpora import CORPORA
    from edgefer.train.protocols import PROTOCOLS

    p.add_argument("--dataset", choices=CORPORA, default="folders",
                   help="layout of --data: class folders (FER2013 ...), kdef, ckplus, ckplus48, jaffe, rafdb")
    p.add_argument("--protocol", choices=PROTOCOLS, default="auto",
                   help="given (val/ folder), published (random split; KDEF 2,644/294), subject (no person on both "
                        "sides), kfold (subject-wise), official (RAF-DB); auto picks the dataset's usual one")
    p.add_argument("--folds", type=int, default=10, help="k of subject-wise k-fold")
    p.add_argument("--input-size", type=int, default=None,
                   help="face side in pixels (default: the --init-from model's own, else 48)")
    p.add_argument("--limit-per-class", type=int, default=None, help="use at most N faces per class (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kdef-no-face", choices=("borrow", "drop"), default="borrow",
                   help="KDEF photos the Haar detector misses: cut with the box of the same person's straight "
                        "photo (borrow) or leave out (drop); both are listed in data_report.json")
    p.add_argument("--contempt", choices=("drop", "keep"), default="drop",
                   help="ckplus48: drop the contempt folder (7-class protocol; 6 classes, CK+ has no neutral) or "
                        "keep it as an 8th label (8-class protocol)")


def register(sub: argparse._SubParsersAction) -> None:
    from edgefer.train.balance import BALANCE_MODES
    from edgefer.train.heads import HEADS
    from edgefer.train.model import MODELS

    p = sub.add_parser("train", help="train a CNN (MobileNet v1 by default), fit an SVM on its features, fold it in")
    p.add_argument("--data", required=True, help="dataset root (see --dataset) or fer2013.csv")
    p.add_argument("--val", help="validation class-folder root (default: <data>/val, else 10 %% of train)")
    p.add_argument("--out", required=True, help="output folder")
    _data_args(p)
    p.add_argument("--fold", type=int, default=None, help="run only this fold of --protocol kfold")
    p.add_argument("--angles", type=_words, default=["S", "HL", "HR"], help="KDEF angles (comma-separated)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="test share of published/subject splits")
    p.add_argument("--model", choices=(*MODELS, "hybrid"), default="mobilenet")
    p.add_argument("--head", choices=HEADS, default="linear-svm",
                   help="softmax; linear-svm / rbf-svm fitted on features and folded; svm-top: squared-hinge top")
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNet width multiplier (custom CNNs: width)")
    p.add_argument("--weights", default=None, help="'none' (default), 'imagenet', or a local .h5 weights file")
    p.add_argument("--init-from", default=None, help="fine-tune the extractor of a trained cnn.keras/model.keras")
    p.add_argument("--fc-width", type=int, default=4096, help="VGG16 fully connected width")
    p.add_argument("--projection", type=int, default=1024, help="hybrid: width VGG16's features are projected to")
    p.add_argument("--hybrid-parts", type=_words, default=None,
                   help="hybrid: reuse trained parts, MOBILENET,VGG16_CNN.keras (MOBILENET: a cnn.keras or an "
                        "fp32 ONNX from `edgefer convert`)")
    p.add_argument("--hybrid-head-epochs", type=int, default=10, help="hybrid: epochs for projection + head")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=0,
                   help="threads augmenting batches (default 0: one per core, at most 8); raise on a GPU machine")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.25, help="dropout before the softmax head")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing of the softmax loss")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="mixup: blend faces and labels in pairs, weight ~ Beta(a, a); 0.2 is usual (default off)")
    p.add_argument("--bn-momentum", type=float, default=None,
                   help="BatchNorm moving-average momentum (default Keras' 0.99; lower for small datasets)")
    p.add_argument("--svm-c", type=_floats, default=[0.0003, 0.001, 0.003],
                   help="C values searched by CV (comma-separated)")
    p.add_argument("--svm-cv", type=int, default=3, help="inner CV folds of every SVM grid (by subject where known)")
    p.add_argument("--svm-kernels", type=_words, default=[],
                   help="also grid-search exact SVC heads of these kernels on the features (linear,rbf,poly); "
                        "evaluated, not folded")
    p.add_argument("--rbf-c", type=_floats, default=[1.0, 10.0], help="RBF SVM C grid")
    p.add_argument("--rbf-gamma", type=_floats, default=None, help="RBF SVM gamma grid (default 0.25/d,1/d,4/d)")
    p.add_argument("--rff-components", type=int, default=4096, help="random Fourier features of the RBF fold")
    p.add_argument("--balance", choices=BALANCE_MODES, default="none",
                   help="class imbalance: per-class loss weights or class-balanced sampling")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--augment-config", default="",
                   help="override augmentation, e.g. rotation_deg=10,zoom=0.1,shift=0.08,flip=true,brightness=0.8:1.2; "
                        "stronger: crop_scale=0.7,contrast=0.7:1.3,blur=0.3,noise=5,occlusion=0.3 (off by default)")
    p.add_argument("--add-faces", action="append", default=[], metavar="LAYOUT=ROOT",
                   help="add another collection's people to the fitting faces (any protocol; never to "
                        "validation or test), e.g. kdef=../shared/datasets/kdef/KDEF or "
                        "ckplus48=../shared/datasets/ckplus48 (repeatable)")
    p.add_argument("--add-fraction", type=float, default=0.5,
                   help="share of each added collection's people that trains; the others stay unseen (eval-cross)")
    p.add_argument("--teacher", default=None,
                   help="distil: a larger trained network's cnn.keras (same classes) whose softened probabilities "
                        "join each face's target; several, separated by commas, teach as one ensemble (their "
                        "probabilities averaged)")
    p.add_argument("--distill-weight", type=float, default=0.5,
                   help="with --teacher: the teacher's share of each target, in (0, 1] (default 0.5)")
    p.add_argument("--distill-temperature", type=float, default=4.0,
                   help="with --teacher: temperature softening the teacher's probabilities (default 4)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.add_argument("--checkpoint-minutes", type=float_between(0, 24 * 60), default=5.0,
                   help="also checkpoint inside an epoch this often, so --resume loses at most that much "
                        "(TensorFlow backend; 0: at epoch ends only; default 5)")
    p.add_argument("--precise-bn", type=int_between(0), default=0, metavar="BATCHES",
                   help="at each epoch's end, before validation, recompute every BatchNorm layer's statistics from "
                        "this many training batches under the epoch's final weights (the moving averages lag fast "
                        "weights: VGG16 from scratch; TensorFlow's loop; default 0: off)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="mixed_bfloat16: layers compute in bfloat16, weights stay float32 (faster on GPUs and on "
                        "CPUs with bfloat16 instructions, e.g. 1.5x for VGG16 on AVX-512 BF16, not MobileNet; "
                        "saved models end up float32)")
    p.set_defaults(func=_cmd_train)

    x = sub.add_parser("eval-cross",
                       help="artifacts on FER2013 validation and on KDEF / CK+ people they never saw, beside `fer`")
    x.add_argument("--model", action="append",
                   help="artifact (.tflite/.onnx) with its manifest; repeat; default: the shipped model of every "
                        "installed backend")
    x.add_argument("--backend", default=None, help="runtime backend for every --model (default: each format's own)")
    x.add_argument("--fer2013", help="FER2013 root with val/ (PublicTest) or a class-folder validation set")
    x.add_argument("--kdef", help="KDEF root (<root>/<id>/AF01ANS.JPG); portraits are Haar-cut like the runtime")
    x.add_argument("--ckplus", help="CK+48 class folders, or the original CK+ root (cohn-kanade-images + Emotion)")
    x.add_argument("--kdef-angles", type=_words, default=["S", "HL", "HR"], help="KDEF angles (comma-separated)")
    x.add_argument("--crop-size", type=int, default=128,
                   help="side Haar-cut faces (KDEF, original CK+) are stored at; each classifier resizes them to its "
                        "input (FER2013 and CK+48 stay at their own 48x48)")
    x.add_argument("--peer-python",
                   help="Python of a separate virtual environment with the `fer` package: it scores the same crops")
    x.add_argument("--assume-unseen", action="store_true",
                   help="the artifact records no training data: count every KDEF/CK+ person as held out")
    x.add_argument("--flip", action="store_true",
                   help="also score every artifact with test-time flip (each face and its mirror image, averaged)")
    x.add_argument("--zoom", type=float, default=None, metavar="Z",
                   help="with --flip: also score every artifact with flip and the tighter view (each face's central "
                        "Z of width and height, e.g. 0.9, the runtime's default), four views averaged")
    x.add_argument("--json", help="write the full result (per-class figures, confusion matrices) here")
    x.set_defaults(func=_cmd_eval_cross)

    from edgefer.train.corpora import CORPORA

    k = sub.add_parser("pack", help="save a Haar-cropped research set's faces to one .npz, to train where the photos "
                                    "or the cascade are not (train/README.md)")
    k.add_argument("layout", choices=[c for c in CORPORA if c != "folders"], help="the dataset's layout")
    k.add_argument("root", help="the dataset's folder, as --data or --add-faces takes it")
    k.add_argument("--size", type=int, required=True, help="face side in pixels: the runs' --input-size")
    k.add_argument("--out", required=True, help="the pack to write (*.npz)")
    k.add_argument("--angles", type=_words, default=None, help="KDEF angles, comma-separated (default: S,HL,HR)")
    k.add_argument("--kdef-no-face", choices=("borrow", "drop"), default=None,
                   help="KDEF photos Haar misses (as train takes it; default borrow)")
    k.add_argument("--contempt", choices=("drop", "keep"), default=None, help="CK+48's contempt class (default drop)")
    k.set_defaults(func=_cmd_pack)

    b = sub.add_parser("baseline", help="classical baselines: SVM on HOG or PCA features of the face crops")
    b.add_argument("--data", required=True)
    b.add_argument("--out", required=True)
    _data_args(b)
    b.add_argument("--features", choices=("hog", "pca"), default="hog")
    b.add_argument("--head", choices=("linear-svm", "rbf-svm"), default="linear-svm")
    b.add_argument("--svm-c", type=_floats, default=None,
                   help="C grid (default: linear 0.0001,0.001,0.01,0.1; rbf 1,10)")
    b.add_argument("--pca-components", type=int, default=100)
    b.set_defaults(func=_cmd_baseline)
