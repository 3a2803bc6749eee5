"""The ``edgefer`` command line: ``train``, ``convert``, ``detect``, ``eval``.

Each subcommand imports its stage lazily, so the runtime subcommands (``detect``,
``eval``) never load TensorFlow, Keras, scikit-learn or matplotlib.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence


class CliError(Exception):
    """A user-facing error: printed as ``edgefer: error: ...`` with exit status 2."""


#: Each stage registers its own subcommands; the modules only build parsers.
_REGISTRARS = ("edgefer.train.cli", "edgefer.convert.cli", "edgefer.runtime.cli")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from edgefer import __version__

    parser = argparse.ArgumentParser(prog="edgefer", description="Facial emotion recognition for edge devices.")
    parser.add_argument("--version", action="version", version=f"edgefer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _REGISTRARS:
        importlib.import_module(module).register(sub)
    return parser


def prefer_onednn() -> None:
    """Ask TensorFlow for its oneDNN CPU kernels, unless the environment already chose (``TF_ENABLE_ONEDNN_OPTS``).

    TensorFlow turns them on by itself only on CPUs with neural-network extensions (AVX-512 VNNI/BF16, AMX,
    since 2.9); on this project's AVX2 machine (AMD EPYC) they were off, and the kernels it used instead
    compute the input gradient of a 1x1 convolution on a small map slowly: a 48-px MobileNet v1 training
    step took 2.5x as long (benchmarks/results/x86-2core-train-step-48.json). TensorFlow reads the variable
    once, when it is imported, so this must run first. The runtime never imports TensorFlow; nothing else
    reads the variable.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    prefer_onednn()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from edgefer.runtime.redact import install_log_redaction, redact

    install_log_redaction()  # no log line, traceback included, shows a URL's password
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"edgefer: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
