"""``edgefer train`` arguments; the handler imports TensorFlow only when run."""

from __future__ import annotations

import argparse
import sys



def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _cmd_train(args: argparse.Namespace) -> int:
    from edgefer.train.trainer import TrainConfig, run_training

    cfg = TrainConfig(
        data=args.data, out=args.out, val=args.val, input_size=args.input_size, alpha=args.alpha,
        weights=args.weights, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        svm_c=args.svm_c, svm_cv=args.svm_cv, augment=not args.no_augment,
        limit_per_class=args.limit_per_class, seed=args.seed, resume=args.resume,
        bn_momentum=args.bn_momentum, dropout=args.dropout,
    )
    meta = run_training(cfg)
    m = meta["metrics"]
    print(
        f"validation accuracy: softmax {m['val_softmax']['accuracy'] * 100:.2f} %, "
        f"linear SVM {m['val_svm']['accuracy'] * 100:.2f} % ({m['svm_minus_softmax_points']:+.2f} points); "
        f"model written to {args.out}/model.keras"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train MobileNet v1, fit a linear SVM on its features, fold it in")
    p.add_argument("--data", required=True, help="class-folder root (with train/ and val/ inside, or one split) or fer2013.csv")
    p.add_argument("--val", help="validation class-folder root (default: <data>/val, else 10 %% of train)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--input-size", type=int, default=48)
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNet width multiplier")
    p.add_argument("--weights", default=None, help="'none' (default), 'imagenet', or a local .h5 weights file")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.25, help="dropout before the softmax head")
    p.add_argument("--bn-momentum", type=float, default=None,
                   help="BatchNorm moving-average momentum (default Keras' 0.99; lower for small datasets)")
    p.add_argument("--svm-c", type=_floats, default=[0.001, 0.01, 0.1], help="C values searched by CV (comma-separated)")
    p.add_argument("--svm-cv", type=int, default=3)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--limit-per-class", type=int, default=None, help="use at most N faces per class (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.set_defaults(func=_cmd_train)
