"""``edgefer serve`` arguments; the service and its runtime are imported only when it runs."""

from __future__ import annotations

import argparse

from edgefer.cli import CliError

DEFAULT_CONFIG = "/etc/edgefer/config.toml"


def check_model(config) -> str:
    """Resolve and verify the configured artifact's manifest (sha256 included) without loading a backend."""
    from edgefer.runtime.classifier import default_model
    from edgefer.runtime.manifest import Manifest

    path = config.model.path or default_model(config.model.backend or None)
    manifest = Manifest.load(path)
    return f"model {path} ({manifest.format}, {manifest.precision}, {manifest.head} head)"


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgefer.runtime.manifest import ModelError
    from edgefer.runtime.serve.config import ConfigError, load_config

    try:
        config = load_config(args.config)
        if args.check_config:
            print(f"{args.config}: configuration OK; {check_model(config)}")
            return 0
    except (ConfigError, ModelError) as exc:
        raise CliError(str(exc)) from None

    from edgefer.runtime.backends import BackendUnavailable
    from edgefer.runtime.detect import DetectorError
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
                   help="validate the configuration and the model's manifest, then exit (for ExecStartPre)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after reading this many frames (tests, soak)")
    p.set_defaults(func=_cmd_serve)
