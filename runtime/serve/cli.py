"""``edgefer serve`` arguments; the service and its runtime are imported only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgefer.cli import CliError
from edgefer.runtime.limits import int_between

DEFAULT_CONFIG = "/etc/edgefer/config.toml"


def check_config(path: str, config) -> str:
    """Load and try what the service would (model, backend, detector) and check its outputs.

    Returns the OK summary; every problem found is raised at once as a ``CliError``, one per line,
    each with the file, the line of its key and the key.
    """
    from edgefer.runtime.serve.config import key_lines
    from edgefer.runtime.serve.service import Service

    service = Service(config, check_only=True)
    if service.problems:
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

        raise CliError("\n".join(f"{where(key)}: {key}: {message}" for key, message in service.problems))
    outputs = [name for name, on in (("jsonl", config.outputs.jsonl.enabled), ("mqtt", config.outputs.mqtt.enabled),
                                     ("http", config.outputs.http.enabled)) if on]
    return f"{service.checked_model}; detector OK; outputs: {', '.join(outputs) or 'none'}"


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgefer.runtime.serve.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.check_config:
        print(f"{args.config}: configuration OK; {check_config(args.config, config)}")
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
