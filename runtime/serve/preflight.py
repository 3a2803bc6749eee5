"""What ``edgefer serve --check-config`` checks besides the model and the detector: can each output open?

Nothing is created or changed: a path counts as writable when the file (or the folder it
would be created in, or the nearest existing parent of that folder) allows it, so running
the check as root by hand leaves no root-owned file behind for the service's dynamic user.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .config import ServeConfig


def _writable_file(path: Path) -> str | None:
    """Why ``path`` cannot be opened for appending, or None."""
    if path.exists():
        if path.is_dir():
            return f"{path} is a folder, not a file"
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    return _creatable_dir(path.parent)


def _creatable_dir(folder: Path) -> str | None:
    """Why ``folder`` cannot be written into (or created), or None."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder" + (f", so {folder} cannot be created" if probe != folder else "")
    # access(2) also answers EROFS for a read-only file system, for root too.
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable" + (f", so {folder} cannot be created" if probe != folder else "")
    return None


def _readable_file(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return f"{p} does not exist"
    return None if os.access(p, os.R_OK) else f"{p} is not readable"


def check_outputs(config: ServeConfig) -> list[tuple[str, str]]:
    """``(dotted key, problem)`` for every enabled output (and saved-frames folder) that could not open."""
    problems: list[tuple[str, str]] = []
    o = config.outputs
    if o.jsonl.enabled:
        why = _writable_file(Path(o.jsonl.path))
        if why:
            problems.append(("outputs.jsonl.path", f"cannot write the event log: {why}; choose a writable path "
                                                   "or disable the output"))
    if config.privacy.save_frames:
        why = _creatable_dir(Path(config.privacy.frames_dir))
        if why:
            problems.append(("privacy.frames_dir", f"cannot save frames: {why}"))
    if o.mqtt.enabled:
        if importlib.util.find_spec("paho") is None or importlib.util.find_spec("paho.mqtt") is None:
            problems.append(("outputs.mqtt.enabled", "the MQTT output needs paho-mqtt>=2.0: "
                                                     "pip install 'edgefer[serve]' (or disable [outputs.mqtt])"))
        for key, path in (("password_file", o.mqtt.password_file), ("tls_ca", o.mqtt.tls_ca)):
            why = _readable_file(path) if path else None
            if why:
                problems.append((f"outputs.mqtt.{key}", why))
    return problems
