"""The ``edgefer`` command line: ``train``, ``convert``, ``detect``, ``eval``.

Each subcommand imports its stage lazily, so the runtime subcommands (``detect``,
``eval``) never load TensorFlow, Keras, scikit-learn or matplotlib.
"""

from __future__ import annotations

import argparse
import logging
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


def main(argv: Sequence[str] | None = None) -> int:
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
