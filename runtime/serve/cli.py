"""``edgefer serve`` arguments; the service and its runtime are imported only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgefer.cli import CliError
from edgefer.runtime.limits import int_between

DEFAULT_CONFIG = "/etc/edgefer/config.toml"


def _problems(path: str, config, skip: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """Load and try what the service would (model, backend, detector) and check its outputs: every
    problem as ``file:line: key: message`` (keys in ``skip`` left out), and the OK summary."""
    from edgefer.runtime.serve.config import key_lines
    from edgefer.runtime.serve.service import Service

    service = Service(config, check_only=True)
    try:
        lines = key_lines(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        lines = {}

    def where(key: str) -> str:
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in lines:
                return f"{path}:{lines['.'.join(parts[:n])]}"
        return path

    problems = [f"{where(key)}: {key}: {message}" for key, message in service.problems
                if not any(key == k or key.startswith(k + ".") or k.startswith(key + ".") for k in skip)]
    outputs = [name for name, on in (("jsonl", config.outputs.jsonl.enabled), ("mqtt", config.outputs.mqtt.enabled),
                                     ("http", config.outputs.http.enabled)) if on]
    return problems, f"{service.checked_model}; detector OK; outputs: {', '.join(outputs) or 'none'}"


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgefer.runtime.serve.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.check_config and exc.config is not None:  # go on: report the other problems too
            problems, _ = _problems(args.config, exc.config, exc.keys)
            raise CliError("\n".join([str(exc), *problems])) from None
        raise CliError(str(exc)) from None
    if args.check_config:
        problems, summary = _problems(args.config, config)
        if problems:
            raise CliError("\n".join(problems))
        print(f"{args.config}: configuration OK; {summary}")
        return 0

    from edgefer.runtime.backends import BackendUnavailable
    from edgefer.runtime.detect import DetectorError
    from edgefer.runtime.manifest import ModelError
    from edgefer.runtime.serve.mqtt import OutputUnavailable
    from edgefer.runtime.serve.service import Service

    try:
        service = Service(config, max_frames=args.max_frames)
    except (ModelError, BackendUnavailable, DetectorError, OutputUnavailable, OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    service.install_signal_handlers()
    return service.run()


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgefer serve`` to the ``edgefer`` command line."""
    p = sub.add_parser("serve", help="run the detector headless as a service (systemd Type=notify)",
                       description="Run the detector unattended: smoothing, camera reconnects, JSON-lines/MQTT "
                                   "events, /healthz and /metrics. Exit status 2: bad configuration or model.")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"TOML configuration (default: {DEFAULT_CONFIG})")
    p.add_argument("--check-config", action="store_true",
                   help="validate the configuration, load and try the model, backend and detector, check that "
                        "the outputs can open, report every problem, then exit (for ExecStartPre)")
    p.add_argument("--max-frames", type=int_between(0), default=None, help="stop after reading this many frames (tests, soak)")
    p.set_defaults(func=_cmd_serve)
