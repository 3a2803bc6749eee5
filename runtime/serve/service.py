"""The service loop: open the source (with backoff), run the pipeline, smooth, emit, report health.

It composes the runtime's public pieces (``open_source``, ``EmotionRecognizer``,
``Pipeline``) and adds what an unattended kiosk needs: a
camera that is missing or lost is retried with a doubling backoff, a bad frame is
skipped and counted, SIGTERM stops the loop, flushes the outputs and exits, and
systemd hears READY, STATUS and watchdog pings throughout.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Callable

import numpy as np

from ..classifier import EmotionClassifier
from ..detect import Box, HaarConfig, YuNetConfig
from ..detectors import create_detector
from ..limits import usable_cores
from ..pipeline import FrameResult, Pipeline
from ..recognizer import EmotionRecognizer
from ..tracking import TrackConfig
from ..sources import CaptureOptions, Frame, FrameSource, open_source
from ..redact import redact
from .config import ServeConfig
from .frames import FrameSaver
from .http import HealthServer
from .metrics import ServiceMetrics
from .preflight import check_outputs
from .sdnotify import Notifier
from .smoothing import FaceTracker, TrackedFace

log = logging.getLogger(__name__)

Opener = Callable[[str, CaptureOptions], FrameSource]


class Service:
    """``edgefer serve``: loads the model and opens the outputs at construction; ``run`` loops until stopped."""

    def __init__(self, config: ServeConfig, opener: Opener = open_source, notifier: Notifier | None = None,
                 max_frames: int | None = None, check_only: bool = False):
        """Load the model and the detector and open the outputs.

        ``check_only`` (``--check-config``) loads and tries the same model and detector but, instead
        of raising at the first problem and opening the outputs, checks that each output can be
        opened and lists every problem in :attr:`problems` (as ``(dotted key, message)``).
        """
        self.config = config
        self.metrics = ServiceMetrics()
        self.notifier = notifier or Notifier()
        self.max_frames = max_frames
        self.problems: list[tuple[str, str]] = []
        self.checked_model = ""
        self._opener = opener
        self._stop = threading.Event()
        self.state = "starting"
        self.seen = 0  # frames read, good or bad
        self.seq = 0  # events emitted
        self._started = time.monotonic()
        self._last_frame: float | None = None
        self._last_status = 0.0
        self._next_slot = 0.0
        self._last_key: tuple = ()
        self._outputs: list[Any] = []
        self._output_errors: dict[str, str | None] = {}  # output name -> why its last write failed
        self.http: HealthServer | None = None

        # Model and detector problems end the start before any output or camera is touched.
        m, d = config.model, config.detector
        # threads = 0: one per usable core, given explicitly (ONNX Runtime's own default pins its threads,
        # which the unit's SystemCallFilter forbids).
        threads = m.threads or usable_cores()
        providers = m.providers.split(",") if m.providers else None
        if check_only:
            self._check(threads, providers)
            return
        self.recognizer = EmotionRecognizer(m.path or None, m.backend or None, self._detector_config(),
                                            threads=threads, tracking=TrackConfig(detect_every=d.detect_every),
                                            providers=providers, flip=m.flip, zoom=m.zoom or None)
        self.pipeline = Pipeline(self.recognizer)
        s = config.smoothing
        # The tracker smooths calibrated probabilities, so min_confidence is a probability.
        self.tracker = FaceTracker(self.recognizer.labels, s.alpha, s.iou_threshold, s.max_missed, s.min_hits,
                                   s.min_confidence)
        p = config.privacy
        self.saver = FrameSaver(p.frames_dir, p.frames_interval_s, p.frames_max_files) if p.save_frames else None
        try:
            self._open_outputs()
        except BaseException:
            self._close_outputs()
            self.recognizer.close()
            raise
        self.metrics.start_time.set(time.time())

    def _detector_config(self) -> HaarConfig | YuNetConfig:
        return self.config.detector.runtime_config()

    def _check(self, threads: int, providers: list[str] | None) -> None:
        """``--check-config``: load and try the model, build the detector, check the outputs; every
        problem, of any kind, goes to :attr:`problems` (nothing is raised, nothing is opened for good)."""
        m = self.config.model
        try:
            classifier = EmotionClassifier(m.path or None, m.backend or None, threads, providers)
            try:  # a file that loads may still fail to run: try one face
                spec = classifier.spec
                classifier.classify([np.zeros((spec.height, spec.width), np.uint8)])
                self.checked_model = (f"model {classifier.path} ({classifier.manifest.format}, "
                                      f"{classifier.manifest.precision}, {classifier.manifest.head} head) loads and "
                                      f"runs on {classifier.backend.name}")
            finally:
                classifier.close()
        except Exception as exc:
            key = "model.path" if m.path else "model.backend" if m.backend else "model"
            self.problems.append((key, redact(str(exc)) or type(exc).__name__))
        try:
            create_detector(self._detector_config(), TrackConfig(detect_every=self.config.detector.detect_every))
        except Exception as exc:
            self.problems.append(("detector", redact(str(exc)) or type(exc).__name__))
        self.problems += check_outputs(self.config)

    def _open_outputs(self) -> None:
        o = self.config.outputs
        if o.jsonl.enabled:
            from .jsonl import JsonlWriter

            try:
                self._outputs.append(JsonlWriter(o.jsonl.path, o.jsonl.max_bytes, o.jsonl.backups, o.jsonl.fsync))
            except OSError as exc:
                raise OSError(f"[outputs.jsonl] path: {exc}; choose a writable path or disable the output") from None
        if o.mqtt.enabled:
            from .mqtt import MqttPublisher

            self._outputs.append(MqttPublisher(o.mqtt, self.metrics))
        for output in self._outputs:
            self._output_errors[output.name] = None
            self.metrics.output_up.set(1, output=output.name)
        if o.http.enabled:
            self.http = HealthServer(o.http.host, o.http.port, self.health, self.metrics.registry.render)
            log.info("serving /healthz and /metrics on http://%s:%d", self.http.host, self.http.port)

    # -- control -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM (systemd's stop) and SIGINT end the loop cleanly; call from the main thread."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self.stop())

    def health(self) -> dict[str, Any]:
        """The /healthz verdict: running, and a frame processed within ``stale_after_s``."""
        now = time.monotonic()
        age = None if self._last_frame is None else round(now - self._last_frame, 3)
        outputs = {name: {"ok": error is None, "error": error,
                          "events_dropped": int(self.metrics.events_dropped.value(output=name))}
                   for name, error in self._output_errors.items()}
        ok = (self.state == "running" and age is not None and age <= self.config.health.stale_after_s
              and all(o["ok"] for o in outputs.values()))
        return {
            "ok": ok, "state": self.state, "camera_connected": bool(self.metrics.connected.value()),
            "last_frame_age_s": age, "frames": int(self.metrics.frames.value()),
            "uptime_s": round(now - self._started, 3), "outputs": outputs,
        }

    # -- main loop -----------------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM, ``max_frames`` or the end of a finite, non-looping source; returns 0."""
        self.notifier.ready(f"started; opening {self._source_name()}")
        info = self.recognizer.backend_info
        on = f" on {', '.join(info['providers'])}" if info.get("providers") else ""
        log.info("edgefer serve started: model %s (%s%s), source %s", self.recognizer.model_path,
                 self.recognizer.backend, on, self._source_name())
        try:
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _source_name(self) -> str:
        # A URL may carry credentials: never put more than its scheme and host into logs or STATUS.
        spec = redact(self.config.source.spec)
        if "://" in spec:
            scheme, _, rest = spec.partition("://")
            return f"{scheme}://{rest.split('/')[0]}/..."
        return spec if "!" not in spec else "GStreamer pipeline"

    def _done(self) -> bool:
        return self._stop.is_set() or (self.max_frames is not None and self.seen >= self.max_frames)

    def _loop(self) -> None:
        cfg = self.config.source
        options = CaptureOptions(cfg.width, cfg.height, cfg.fps, cfg.max_read_failures, cfg.max_image_pixels)
        delay = cfg.reconnect_initial_s
        while not self._done():
            try:
                source = self._opener(cfg.spec, options)
            except Exception as exc:  # a missing camera is waited for, never a crash loop
                self.metrics.open_failures.inc()
                self._set_state("waiting_for_source", f"cannot open {self._source_name()}: {exc}; "
                                                      f"retrying in {delay:g}s")
                self._wait(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue
            self.metrics.connected.set(1)
            self.recognizer.reset()  # a reopened camera is a new stream: forget the faces being followed
            self._set_state("running", f"reading {self._source_name()}")
            try:
                good = self._consume(source)
            finally:
                self.metrics.connected.set(0)
                self._close_source(source)
            if self._done():
                break
            incomplete = getattr(source, "incomplete", None)
            if incomplete:  # a video file that ended before its declared length
                log.warning("%s", incomplete)
            if not source.live and not cfg.loop:
                log.info("source %s ended; stopping", self._source_name())
                break
            if good:
                delay = cfg.reconnect_initial_s
                if not source.live:
                    continue  # a looping file starts again at once
            if source.live:
                self.metrics.reconnects.inc()
            # A source that delivered nothing backs off like one that cannot be opened.
            self._set_state("waiting_for_source", f"{self._source_name()} stopped delivering frames; "
                                                  f"reopening in {delay:g}s")
            self._wait(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

    def _close_source(self, source: FrameSource) -> None:
        try:
            source.close()
        except Exception as exc:  # an unplugged camera may fail to release; the next open starts afresh
            log.warning("closing %s failed: %s", self._source_name(), exc)

    def _consume(self, source: FrameSource) -> int:
        good = 0
        try:
            for frame in source:
                if self._done():
                    break
                self.seen += 1
                self._tick()
                self._throttle()
                if self._process(frame):
                    good += 1
        except Exception as exc:  # the source itself broke (driver error): treat it as lost
            log.warning("source %s failed: %s: %s", self._source_name(), type(exc).__name__, exc)
        return good

    def _process(self, frame: Frame) -> bool:
        if frame.image is None:
            self._bad("read_failed", frame.error or "empty frame")
            return False
        result = self.pipeline.run(frame)
        if result.analysis is None:
            self._bad("bad_frame", result.error or "empty frame")
            return False
        try:
            self._handle(frame, result)
        except Exception as exc:  # never die on one frame
            self._bad("bad_frame", f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _bad(self, reason: str, message: str) -> None:
        self.metrics.dropped.inc(reason=reason)
        count = int(self.metrics.dropped.value(reason=reason))
        if count == 1 or count % 100 == 0:  # log the first and every 100th, not a flood
            log.warning("skipped frame (%s, %d so far): %s", reason, count, message)

    def _handle(self, frame: Frame, result: FrameResult) -> None:
        timings = result.timings_ms
        for stage, ms in timings.items():
            self.metrics.latency.observe(ms / 1e3, stage=stage)
        self.metrics.latency.observe(sum(timings.values()) / 1e3, stage="total")
        faces = result.faces
        self.metrics.frames.inc()
        self.metrics.faces.inc(len(faces))
        self.metrics.last_frame.set(time.time())
        self._last_frame = time.monotonic()
        labels = self.recognizer.labels
        boxes = [Box(*face.box) for face in faces]
        probabilities = np.array([[face.probabilities[name] for name in labels] for face in faces], np.float32)
        scores = np.array([[face.scores[name] for name in labels] for face in faces], np.float32)
        tracked = self.tracker.update(boxes, probabilities, scores)
        self.metrics.tracks.set(len(self.tracker.tracks))
        if self.saver is not None and tracked and frame.image is not None:
            self.saver.offer(frame.image, frame.index)
        if self._should_emit(tracked):
            self._emit(self._event(frame, tracked))

    def _should_emit(self, tracked: list[TrackedFace]) -> bool:
        mode = self.config.outputs.emit
        if mode == "all":
            return True
        if mode == "faces":
            return bool(tracked)
        key = tuple((f.track, f.label) for f in tracked)
        changed = key != self._last_key
        self._last_key = key
        return changed

    def _event(self, frame: Frame, tracked: list[TrackedFace]) -> dict[str, Any]:
        """Labels, smoothed probabilities, boxes and times only: no image, no source path or URL."""
        self.seq += 1
        include_scores = self.config.privacy.include_scores
        faces = []
        for f in tracked:
            face: dict[str, Any] = {"track": f.track, "box": f.box.as_list(), "label": f.label,
                                    "probability": f.probability}
            if include_scores:
                face["probabilities"] = f.probabilities
                if f.scores is not None:
                    face["scores"] = f.scores
            faces.append(face)
        event: dict[str, Any] = {"seq": self.seq, "time": round(time.time(), 3), "frame": frame.index, "faces": faces}
        if include_scores:
            # probabilities are calibrated and smoothed over frames; scores are this model's raw outputs
            event["scores_kind"] = self.recognizer.scores_kind
        return event

    def _emit(self, event: dict[str, Any]) -> None:
        for output in self._outputs:
            try:
                accepted = output.write(event)
                failure = getattr(output, "error", None)
            except Exception as exc:  # a broken output must not stop the detector
                accepted, failure = False, f"{type(exc).__name__}: {exc}"
            name = output.name
            if failure != self._output_errors.get(name):  # log a change of state, not every event
                if failure is None:
                    log.info("%s output works again", name)
                elif not hasattr(output, "error"):  # an output that reports its own state has logged it
                    log.warning("%s output failed: %s; its events are dropped and counted", name, failure)
                self._output_errors[name] = failure
                self.metrics.output_up.set(0 if failure else 1, output=name)
            if failure:
                self.metrics.output_errors.inc(output=name)
            if accepted:
                self.metrics.events.inc(output=name)
            else:
                self.metrics.events_dropped.inc(output=name)

    # -- pacing, health, shutdown --------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.config.health.watchdog:
            self.notifier.watchdog()
        now = time.monotonic()
        if now - self._last_status >= self.config.health.status_interval_s:
            self._last_status = now
            frames = int(self.metrics.frames.value())
            uptime = max(now - self._started, 1e-9)
            self.notifier.status(f"{self.state}: {frames} frames, {int(self.metrics.faces.value())} faces, "
                                 f"{int(self.metrics.reconnects.value())} reconnects, "
                                 f"{frames / uptime:.1f} fps average")

    def _throttle(self) -> None:
        max_fps = self.config.source.max_fps
        if not max_fps:
            return
        now = time.monotonic()
        if self._next_slot > now:
            self._stop.wait(self._next_slot - now)
        self._next_slot = max(now, self._next_slot) + 1.0 / max_fps

    def _wait(self, seconds: float) -> None:
        """Sleep without starving the watchdog; returns early on stop."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stop.wait(min(left, 0.5))
            self._tick()

    def _set_state(self, state: str, message: str) -> None:
        if state != self.state:
            (log.info if state == "running" else log.warning)("%s", message)
        self.state = state
        self.notifier.status(message)

    def _close_outputs(self) -> None:
        for output in self._outputs:
            try:
                output.close()
            except Exception as exc:
                log.warning("closing the %s output failed: %s", output.name, exc)
        self._outputs = []
        if self.http is not None:
            self.http.close()
            self.http = None

    def _shutdown(self) -> None:
        self.state = "stopping"
        self.notifier.stopping(f"stopping after {int(self.metrics.frames.value())} frames")
        self._close_outputs()
        self.recognizer.close()
        log.info("edgefer serve stopped: %d frames, %d events, %d skipped", int(self.metrics.frames.value()),
                 self.seq, int(self.metrics.dropped.value(reason="read_failed")
                               + self.metrics.dropped.value(reason="bad_frame")))
        self.notifier.close()
