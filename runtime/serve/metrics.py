"""Prometheus counters, gauges and histograms in the text exposition format, standard library only."""

from __future__ import annotations

import math
import threading
from typing import Iterable, TypeVar

from ..redact import redact

#: Latency buckets in seconds: 0.5 ms to 2.5 s covers a Pi Zero's detector and an H100's classifier.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, lock: threading.Lock):
        self.name = name
        self.help = help_text
        self._lock = lock

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        """The metric's lines in the Prometheus text format."""
        raise NotImplementedError


_M = TypeVar("_M", bound=_Metric)


class Counter(_Metric):
    """A monotonically increasing value per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, lock: threading.Lock):
        super().__init__(name, help_text, lock)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        values = self._values or {(): 0.0}
        return self.header() + [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(values.items())]


class Gauge(Counter):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] = float(value)


class Histogram(_Metric):
    """Cumulative bucket counts, sum and count per label set."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, lock: threading.Lock, buckets: Iterable[float]):
        super().__init__(name, help_text, lock)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += value
            series[-1] += 1

    def totals(self, **labels: str) -> tuple[float, float]:
        """(sum, count) of one label set."""
        with self._lock:
            series = self._series.get(tuple(sorted(labels.items())))
            return (series[-2], series[-1]) if series else (0.0, 0.0)

    def render(self) -> list[str]:
        lines = self.header()
        for key, series in sorted(self._series.items()):
            for bound, count in zip(self.buckets, series):
                lines.append(f"{self.name}_bucket{_labels(key, (('le', _number(bound)),))} {_number(count)}")
            lines.append(f"{self.name}_bucket{_labels(key, (('le', '+Inf'),))} {_number(series[-1])}")
            lines.append(f"{self.name}_sum{_labels(key)} {_number(series[-2])}")
            lines.append(f"{self.name}_count{_labels(key)} {_number(series[-1])}")
        return lines


class Registry:
    """The service's metrics; ``render`` is safe to call from the HTTP thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: list[_Metric] = []

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text, self._lock))

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text, self._lock))

    def histogram(self, name: str, help_text: str, buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, self._lock, buckets))

    def _add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        with self._lock:
            lines = [line for m in self._metrics for line in m.render()]
        return redact("\n".join(lines) + "\n")


class ServiceMetrics:
    """The metrics ``edgefer serve`` exports on ``/metrics``."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.frames = r.counter("edgefer_frames_total", "Frames processed (good ones)")
        self.faces = r.counter("edgefer_faces_total", "Faces detected and classified")
        self.dropped = r.counter("edgefer_dropped_frames_total",
                                 "Frames skipped, by reason (read_failed: the source delivered none; "
                                 "bad_frame: it could not be processed)")
        self.latency = r.histogram("edgefer_stage_latency_seconds",
                                   "Per-frame latency of each pipeline stage (read, detect, preprocess, infer, total)")
        self.reconnects = r.counter("edgefer_camera_reconnects_total", "Times a lost live source was reopened")
        self.open_failures = r.counter("edgefer_source_open_failures_total", "Failed attempts to open the source")
        self.connected = r.gauge("edgefer_camera_connected", "1 while the source is open and delivering")
        self.tracks = r.gauge("edgefer_tracks", "Faces currently tracked")
        self.events = r.counter("edgefer_events_total", "Events handed to each output")
        self.events_dropped = r.counter("edgefer_events_dropped_total", "Events an output could not take")
        self.output_errors = r.counter("edgefer_output_errors_total", "Write or publish errors by output")
        self.output_up = r.gauge("edgefer_output_up", "1 while an output's last write worked (0: e.g. a full disk)")
        self.mqtt_connected = r.gauge("edgefer_mqtt_connected", "1 while connected to the MQTT broker")
        self.mqtt_queued = r.gauge("edgefer_mqtt_queued_events", "Events waiting for the broker's acknowledgement")
        self.last_frame = r.gauge("edgefer_last_frame_timestamp_seconds", "Unix time of the last processed frame")
        self.start_time = r.gauge("edgefer_start_time_seconds", "Unix time the service started")
