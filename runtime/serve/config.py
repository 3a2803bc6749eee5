"""The strict, typed TOML configuration of ``edgefer serve``.

Every section is a frozen dataclass; a key the dataclass does not declare, a value
of the wrong type or out of range is a :class:`ConfigError` naming the file, the
line, the dotted key and what is accepted. Every problem of a file is reported at
once, one per line; every number is bounded and finite. Sections: ``source``, ``detector``,
``model``, ``smoothing``, ``outputs`` (``jsonl``, ``mqtt``, ``http``), ``privacy``
and ``health``; ``devices/*/config.example.toml`` documents each key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from ..classifier import DEFAULT_ZOOM, MIN_ZOOM, zoom_ok
from ..detect import HaarConfig, YuNetConfig
from ..limits import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT, MAX_SIDE, max_threads
from ..tracking import TrackConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9/3.10 devices only
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None  # type: ignore[assignment]


class ConfigError(Exception):
    """The configuration file is missing, not TOML, or has an unknown key or a bad value.

    When the file parsed, ``config`` holds it with each bad value replaced by its default and
    ``keys`` the dotted keys at fault, so ``--check-config`` can go on to check the rest.
    """

    def __init__(self, message: str, config: "ServeConfig | None" = None, keys: tuple[str, ...] = ()):
        super().__init__(message)
        self.config = config
        self.keys = keys


Check = Callable[[Any], "str | None"]


def _width(v: int) -> str | None:
    # -1: the smallest face decides; 0 switches downscaling off; a width must leave the detector its window.
    return (None if v in (-1, 0) or 32 <= v <= MAX_SIDE
            else f"must be -1 (automatic), 0 (no downscaling) or from 32 to {MAX_SIDE}")


def _threads(v: int) -> str | None:
    top = max_threads()
    return None if 0 <= v <= top else f"must be from 0 (one per core) to {top} (4 per usable core)"


DAY_S = 86400.0


def _between(low: float, high: float, low_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        ok = (low < v if low_open else low <= v) and v <= high
        return None if ok else f"must be {'>' if low_open else '>='} {low} and <= {high}"
    return check


def _zoom(v: float) -> str | None:
    return None if v == 0 or zoom_ok(v) else f"must be 0 (no tighter view) or >= {MIN_ZOOM:g} and < 1"


def _non_empty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _topic(v: str) -> str | None:
    if not v.strip():
        return "must not be empty"
    return "must not contain the MQTT wildcards '+' or '#'" if set(v) & {"+", "#"} else None


def _opt(default: Any, check: Check | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from and how a lost camera is retried."""

    spec: str = _opt("0", _non_empty, "open_source string: camera index, /dev/videoN, csi[:N], picamera2[:N], "
                                      "GStreamer pipeline, rtsp:// URL, video file, image folder")
    width: int = _opt(640, _between(16, MAX_SIDE), "capture width (picamera2, csi)")
    height: int = _opt(480, _between(16, MAX_SIDE), "capture height (picamera2, csi)")
    fps: int = _opt(30, _between(1, 1000), "capture rate (picamera2, csi)")
    loop: bool = _opt(False, None, "restart a video file or folder at its end (demos, soak tests)")
    max_fps: float = _opt(0.0, _between(0.0, 1000.0), "process at most this many frames per second (0: as fast as read)")
    max_read_failures: int = _opt(5, _between(1, 1_000_000), "consecutive failed reads before the camera counts as lost")
    reconnect_initial_s: float = _opt(1.0, _between(0.01, DAY_S), "first wait before reopening a lost camera")
    reconnect_max_s: float = _opt(30.0, _between(0.01, DAY_S), "longest wait between reopen attempts (doubling backoff)")
    max_image_pixels: int = _opt(DEFAULT_MAX_IMAGE_PIXELS, _between(1, MAX_IMAGE_PIXELS_LIMIT),
                                 "image files (folder sources) with more pixels are refused before decoding")


@dataclass(frozen=True)
class DetectorSection:
    """The ``[detector]`` table; the defaults are the runtime's (``edgefer detect --help``, docs/detection.md).

    Not to be confused with :data:`edgefer.runtime.detect.DetectorConfig`, the detector's own
    configuration that the service builds from this table.
    """

    kind: Literal["haar", "yunet"] = _opt("haar", None, "haar (OpenCV cascade) or yunet (OpenCV's CNN detector)")
    yunet_model: str = _opt("", None, "yunet: face_detection_yunet_2023mar.onnx (empty: $EDGEFER_YUNET, then "
                                      "~/.cache/edgefer/ of the service user)")
    score_threshold: float = _opt(YuNetConfig.score_threshold, _between(0.0, 1.0, low_open=True),
                                  "yunet: minimum face score")
    scale_factor: float = _opt(HaarConfig.scale_factor, _between(1.0, 2.0, low_open=True), "haar: pyramid step")
    min_neighbors: int = _opt(HaarConfig.min_neighbors, _between(0, 1000), "haar: overlapping hits a face needs")
    min_face_windows: float = _opt(HaarConfig.min_face_windows, _between(1.0, 4.0),
                                   "haar: frames are shrunk until the smallest face is this many 24-pixel windows")
    min_face: int = _opt(0, _between(0, MAX_SIDE), "smallest face side in frame pixels (0: the detector's default, "
                                          "haar 24, yunet 16)")
    max_face: int = _opt(HaarConfig.max_face or 0, _between(0, MAX_SIDE), "largest face side in frame pixels (0: no limit)")
    min_face_ratio: float = _opt(HaarConfig.min_face_ratio, _between(0.0, 1.0),
                                 "smallest face side as a fraction of the frame's shorter side")
    detect_width: int = _opt(-1, _width, "shrink frames to at most this width before detecting, never below "
                                                "what the smallest face needs (-1: as far as that allows; 0: never)")
    detect_every: int = _opt(TrackConfig.detect_every, _between(1, 1000),
                             "run the detector every N frames and follow the faces in between (1: every frame)")
    cascade: str = _opt("", None, "haar: cascade XML (empty: found in cv2.data or /usr/share/opencv4)")
    verify: bool = _opt(HaarConfig.verify, None, "haar: confirm each face with a second cascade")
    verify_cascade: str = _opt("", None, "haar: the confirming cascade XML (empty: OpenCV's "
                                         "haarcascade_frontalface_alt.xml)")

    def runtime_config(self) -> "HaarConfig | YuNetConfig":
        """The runtime's detector configuration these keys describe."""
        config: HaarConfig | YuNetConfig = (
            YuNetConfig(self.yunet_model, score_threshold=self.score_threshold) if self.kind == "yunet"
            else HaarConfig(self.scale_factor, self.min_neighbors, cascade=self.cascade or None,
                            min_face_windows=self.min_face_windows, verify=self.verify,
                            verify_cascade=self.verify_cascade or None))
        return dataclasses.replace(
            config, min_face=self.min_face or config.min_face, max_face=self.max_face or None,
            min_face_ratio=self.min_face_ratio, detect_width=None if self.detect_width < 0 else self.detect_width)


@dataclass(frozen=True)
class ModelConfig:
    """The classifier artifact; empty values mean the shipped default."""

    path: str = _opt("", None, "artifact (.tflite, .onnx, .engine); empty: the shipped model")
    backend: str = _opt("", None, "litert, onnx or tensorrt; empty: from the artifact's suffix")
    threads: int = _opt(0, _threads, "inference threads (0: one per core the service may use)")
    providers: str = _opt("", None, "onnx backend: execution providers in order, e.g. \"cuda,cpu\"; empty: "
                                    "TensorRT, then CUDA where onnxruntime has them, then CPU")
    flip: bool = _opt(True, None, "test-time flip: classify each face with its mirror image, scores averaged")
    zoom: float = _opt(DEFAULT_ZOOM, _zoom, "the tighter view: each face also classified cut to its central share of "
                                   "width and height (0.5 to under 1), scores averaged; 0: none")


@dataclass(frozen=True)
class SmoothingConfig:
    """Per-face smoothing: an IoU track per face, an EMA of its probabilities, a minimum confidence."""

    alpha: float = _opt(0.4, _between(0.0, 1.0, low_open=True), "EMA weight of the newest frame (1: no smoothing)")
    iou_threshold: float = _opt(0.3, _between(0.0, 1.0, low_open=True), "IoU that continues a track")
    max_missed: int = _opt(5, _between(0, 100_000), "frames a track survives without a matching face")
    min_hits: int = _opt(2, _between(1, 100_000), "frames a face must be seen before it is reported")
    min_confidence: float = _opt(0.0, _between(0.0, 1.0), "smoothed top probability (0-1, calibrated) needed to "
                                                         "change a track's label")


@dataclass(frozen=True)
class JsonlConfig:
    """Append-only JSON-lines event log, rotated by size."""

    enabled: bool = _opt(False)
    path: str = _opt("/var/lib/edgefer/events.jsonl", _non_empty)
    max_bytes: int = _opt(10 * 1024 * 1024, _between(1024, 1 << 40), "rotate when the log would grow past this")
    backups: int = _opt(5, _between(0, 1000), "rotated files kept (events.jsonl.1 ... .N)")
    fsync: bool = _opt(False, None, "fsync after every line (survives power loss, costs flash wear)")


@dataclass(frozen=True)
class MqttConfig:
    """MQTT publishing: QoS 1, persistent session, bounded offline queue."""

    enabled: bool = _opt(False)
    host: str = _opt("127.0.0.1", _non_empty)
    port: int = _opt(1883, _between(1, 65535))
    topic: str = _opt("edgefer/events", _topic)
    client_id: str = _opt("", None, "empty: edgefer-<hostname>; keep it stable, the broker keys the session on it")
    keepalive_s: int = _opt(30, _between(5, 65535))
    queue_max: int = _opt(10000, _between(1, 10_000_000), "events held while the broker is away; newer ones are dropped")
    username: str = _opt("")
    password_file: str = _opt("", None, "file holding the password (keeps it out of the config)")
    tls_ca: str = _opt("", None, "CA bundle; set it to connect with TLS")
    flush_timeout_s: float = _opt(3.0, _between(0.0, 60.0), "how long a stop waits for queued events to be acknowledged")


@dataclass(frozen=True)
class HttpConfig:
    """``/healthz`` and Prometheus ``/metrics`` over plain HTTP."""

    enabled: bool = _opt(True)
    host: str = _opt("127.0.0.1", _non_empty, "bind address; keep it on loopback unless a firewall guards it")
    port: int = _opt(9108, _between(0, 65535))


@dataclass(frozen=True)
class OutputsConfig:
    """Which events are emitted and where they go."""

    emit: Literal["all", "faces", "changes"] = _opt(
        "changes", None, "all: every frame; faces: frames with a reported face; changes: when a label or track changes")
    jsonl: JsonlConfig = field(default_factory=JsonlConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    http: HttpConfig = field(default_factory=HttpConfig)


@dataclass(frozen=True)
class PrivacyConfig:
    """Nothing but labels, probabilities, boxes and times leaves the process unless asked for here."""

    include_scores: bool = _opt(True, None, "per-class probabilities and raw scores in events (false: top label and its probability only)")
    save_frames: bool = _opt(False, None, "write frames that contain faces to frames_dir (off by default)")
    frames_dir: str = _opt("/var/lib/edgefer/frames", _non_empty)
    frames_interval_s: float = _opt(10.0, _between(0.0, DAY_S), "at most one saved frame per interval")
    frames_max_files: int = _opt(100, _between(1, 1_000_000), "oldest saved frames are deleted beyond this")


@dataclass(frozen=True)
class HealthConfig:
    """systemd notification and the health verdict."""

    watchdog: bool = _opt(True, None, "send WATCHDOG=1 when systemd asks for it (WatchdogSec)")
    status_interval_s: float = _opt(5.0, _between(0.1, 3600.0), "how often STATUS= and the log line are refreshed")
    stale_after_s: float = _opt(10.0, _between(0.1, DAY_S), "/healthz fails when no frame was processed for this long")


@dataclass(frozen=True)
class ServeConfig:
    """The whole ``edgefer serve`` configuration."""

    source: SourceConfig = field(default_factory=SourceConfig)
    detector: DetectorSection = field(default_factory=DetectorSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    health: HealthConfig = field(default_factory=HealthConfig)


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\s\"]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"\s]+?)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of each table header and ``key =`` line, by dotted path.

    TOML parsers do not report positions, so the config errors find their line here;
    a key inside an inline table or a multi-line string maps to its table's line.
    """
    lines: dict[str, int] = {}
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("[["):
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            lines.setdefault(".".join(table), number)
            continue
        key = _KEY.match(line)
        if key:
            path = table + [part.strip().strip('"') for part in key.group(1).split(".")]
            lines.setdefault(".".join(path), number)
    return lines


class _Reader:
    """Validates parsed TOML against the dataclasses, collecting every problem instead of stopping at the first."""

    def __init__(self, source: str, lines: Mapping[str, int]):
        self.source = source
        self.lines = lines
        self.errors: list[str] = []
        self.keys: list[str] = []

    def where(self, dotted: str) -> str:
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            line = self.lines.get(".".join(parts[:n]))
            if line:
                return f"{self.source}:{line}"
        return self.source

    def fail(self, dotted: str, message: str) -> None:
        self.errors.append(f"{self.where(dotted)}: {dotted}: {message}")
        self.keys.append(dotted)

    def section(self, cls: type, data: Any, prefix: str) -> Any:
        """An instance of ``cls`` from ``data``; a key with a problem keeps its default (and is reported)."""
        if not isinstance(data, dict):
            self.fail(prefix, f"must be a table ([{prefix}]), got {type(data).__name__}")
            return cls()
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if key not in fields:
                valid = ", ".join(fields)
                self.fail(dotted, f"unknown key; valid keys{' of [' + prefix + ']' if prefix else ''}: {valid}")
                continue
            checked = self._value(hints[key], fields[key], value, dotted)
            if checked is not _BAD:
                values[key] = checked
        return cls(**values)

    def _value(self, hint: Any, f: dataclasses.Field, value: Any, dotted: str) -> Any:
        if dataclasses.is_dataclass(hint):
            return self.section(typing.cast(type, hint), value, dotted)
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            if value not in choices:
                self.fail(dotted, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
                return _BAD
            return value
        expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
        ok = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
        }[hint]
        if not ok:
            self.fail(dotted, f"must be {expected}, got {type(value).__name__} {value!r}")
            return _BAD
        value = float(value) if hint is float else value
        if hint is float and not math.isfinite(value):  # TOML has inf and nan
            self.fail(dotted, f"must be a finite number, got {value!r}")
            return _BAD
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            self.fail(dotted, f"{problem}, got {value!r}")
            return _BAD
        return value


_BAD = object()  # a value that failed validation


def parse_config(text: str, source: str = "<config>") -> ServeConfig:
    """Parse and validate TOML text; ``source`` names it in errors. Every problem is in one ConfigError."""
    if tomllib is None:  # pragma: no cover
        raise ConfigError("reading TOML on Python < 3.11 needs the tomli package (pip install tomli)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    reader = _Reader(source, key_lines(text))
    config: ServeConfig = reader.section(ServeConfig, data, "")
    _check_across(config, reader)
    if reader.errors:
        raise ConfigError("\n".join(reader.errors), config, tuple(reader.keys))
    return config


def _check_across(config: ServeConfig, reader: _Reader) -> None:
    from ..backends import BACKEND_NAMES

    if config.model.backend and config.model.backend not in BACKEND_NAMES:
        reader.fail("model.backend", f"must be one of {', '.join(BACKEND_NAMES)} or empty, "
                                     f"got {config.model.backend!r}")
    if config.model.providers and config.model.backend not in ("", "onnx"):
        reader.fail("model.providers", f"applies to the onnx backend only, not to {config.model.backend!r}")
    if config.source.reconnect_max_s < config.source.reconnect_initial_s:
        reader.fail("source.reconnect_max_s", "must be >= source.reconnect_initial_s")
    d = config.detector
    if d.max_face and d.min_face and d.max_face < d.min_face:
        reader.fail("detector.max_face", f"must be 0 (no limit) or >= detector.min_face ({d.min_face})")
    if d.yunet_model and not Path(d.yunet_model).is_file():
        reader.fail("detector.yunet_model", f"YuNet model file {d.yunet_model} does not exist")
    if config.model.path and not Path(config.model.path).is_file():
        reader.fail("model.path", f"model file {config.model.path} does not exist")
    if config.outputs.mqtt.enabled and config.outputs.mqtt.password_file:
        if not Path(config.outputs.mqtt.password_file).is_file():
            reader.fail("outputs.mqtt.password_file", f"{config.outputs.mqtt.password_file} does not exist")


def load_config(path: str | Path) -> ServeConfig:
    """Read and validate a configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    return parse_config(text, str(path))
