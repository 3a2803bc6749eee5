"""Self-describing artifacts: the ``<artifact>.json`` sidecar every model file carries.

The runtime takes labels, input spec, quantisation and head type from here and
never duplicates those constants; the sha256 ties a manifest to its artifact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EdgeferError
from .preprocess import InputSpec


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling of the head's raw scores: ``probabilities = softmax(scores / temperature)``.

    Fitted on validation data (never on a test set) by the workstation side. Averaging test-time
    views softens the scores, so each view setting has its own temperature in ``temperatures``
    (``one``, ``flip``, ``zoom``, ``flip+zoom``: see :func:`~edgefer.runtime.classifier.views_name`)
    and ``temperature`` is the one of ``views``, the runtime's default (``(True, 0.9)``: flip and the
    tighter view); manifests written before the views existed have one single-view temperature
    (``views`` ``None``). ``ece_before`` and ``ece_after`` are the expected calibration errors of
    ``softmax(scores)`` and of the scaled scores on that data with ``views``, so a reader can see what
    the temperature bought; ``ece_after_by_views`` the same per setting, ``ece_after_flip`` (older
    manifests) that temperature's error with flip.
    """

    temperature: float
    fitted_on: str = ""
    ece_before: float | None = None
    ece_after: float | None = None
    ece_after_flip: float | None = None
    views: tuple[bool, float | None] | None = None  # (flip, zoom) of ``temperature``
    temperatures: dict[str, float] | None = None
    ece_after_by_views: dict[str, float] | None = None

    def __post_init__(self) -> None:
        for t in [self.temperature, *(self.temperatures or {}).values()]:
            if not isinstance(t, (int, float)) or isinstance(t, bool) or not (0.0 < float(t) < float("inf")):
                raise ValueError(f"calibration temperature must be a finite number > 0, not {t!r}")

    def temperature_for(self, views: str | None) -> float:
        """The temperature of a view setting (``views_name``); ``temperature`` where it has none of its own."""
        return float((self.temperatures or {}).get(views or "", self.temperature))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"temperature": float(self.temperature), "fitted_on": self.fitted_on,
                               "ece_before": self.ece_before, "ece_after": self.ece_after}
        # Each of these is absent from manifests written before it was measured.
        if self.views is not None:
            out["views"] = {"flip": self.views[0], "zoom": self.views[1]}
        if self.temperatures is not None:
            out["temperatures"] = dict(self.temperatures)
        if self.ece_after_by_views is not None:
            out["ece_after_by_views"] = dict(self.ece_after_by_views)
        if self.ece_after_flip is not None:
            out["ece_after_flip"] = self.ece_after_flip
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "Calibration":
        if not isinstance(data, dict) or "temperature" not in data:
            raise ValueError("calibration must be an object with a 'temperature'")
        unknown = set(data) - {"temperature", "fitted_on", "ece_before", "ece_after", "ece_after_flip", "views",
                               "temperatures", "ece_after_by_views"}
        if unknown:
            raise ValueError(f"calibration has unknown keys {sorted(unknown)}")
        views = data.get("views")
        if views is not None and (not isinstance(views, dict) or set(views) != {"flip", "zoom"}):
            raise ValueError(f"calibration views must be {{\"flip\": bool, \"zoom\": number or null}}, not {views!r}")
        for key in ("temperatures", "ece_after_by_views"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise ValueError(f"calibration {key} must map view settings to numbers, not {data[key]!r}")
        return cls(data["temperature"], str(data.get("fitted_on", "")), data.get("ece_before"), data.get("ece_after"),
                   data.get("ece_after_flip"), None if views is None else (bool(views["flip"]), views["zoom"]),
                   data.get("temperatures"), data.get("ece_after_by_views"))


class ModelError(EdgeferError):
    """A model artifact is missing, corrupt or does not match its manifest."""


def sidecar_path(artifact: str | Path) -> Path:
    """``model.tflite`` -> ``model.tflite.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Manifest:
    """What the runtime needs to know about an artifact, plus its provenance."""

    format: str
    precision: str
    labels: list[str]
    input: InputSpec
    head: str
    sha256: str
    input_quantization: dict[str, float] | None = None
    output_quantization: dict[str, float] | None = None
    #: None for artifacts made before calibration existed: the runtime then takes softmax(scores).
    calibration: Calibration | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "precision": self.precision,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "input_quantization": self.input_quantization,
            "output_quantization": self.output_quantization,
            "head": self.head,
            "sha256": self.sha256,
            **({"calibration": self.calibration.to_dict()} if self.calibration else {}),
            **self.extra,
        }

    def write(self, artifact: str | Path) -> Path:
        path = sidecar_path(artifact)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "manifest") -> "Manifest":
        known = {"format", "precision", "labels", "input", "input_quantization", "output_quantization", "head", "sha256",
                 "calibration"}
        missing = {"format", "labels", "input", "head", "sha256"} - set(data)
        if missing:
            raise ModelError(f"{where} lacks {', '.join(sorted(missing))}; re-run `edgefer convert` to regenerate it")
        try:
            spec = InputSpec.from_dict(data["input"])
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}") from None
        if data["head"] not in ("softmax", "svm"):
            raise ModelError(f"{where}: head must be 'softmax' or 'svm', not {data['head']!r}")
        data = dict(data)
        legacy = data.get("calibration")
        if isinstance(legacy, dict) and "temperature" not in legacy and "faces" in legacy:
            # Artifacts converted before the temperature record kept their INT8 calibration sample
            # ({faces, data, seed}) under this key; it lives under "int8_calibration" now.
            data.setdefault("int8_calibration", data.pop("calibration"))
        try:
            calibration = Calibration.from_dict(data["calibration"]) if data.get("calibration") is not None else None
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}") from None
        return cls(
            format=data["format"],
            precision=data.get("precision", "fp32"),
            labels=list(data["labels"]),
            input=spec,
            head=data["head"],
            sha256=data["sha256"],
            input_quantization=data.get("input_quantization"),
            output_quantization=data.get("output_quantization"),
            calibration=calibration,
            extra={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def load(cls, artifact: str | Path, verify: bool = True) -> "Manifest":
        """Read and check the sidecar of ``artifact``; with ``verify`` the sha256 must match."""
        artifact = Path(artifact)
        if not artifact.is_file():
            raise ModelError(f"model file {artifact} does not exist")
        side = sidecar_path(artifact)
        if not side.is_file():
            raise ModelError(
                f"model {artifact} has no manifest {side.name} beside it; artifacts made by `edgefer convert` carry one"
            )
        try:
            data = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"manifest {side} is not valid JSON: {exc}") from None
        manifest = cls.from_dict(data, str(side))
        if verify:
            actual = sha256_of(artifact)
            if actual != manifest.sha256:
                raise ModelError(
                    f"model {artifact} does not match its manifest (sha256 {actual[:12]}… != {manifest.sha256[:12]}…): "
                    "the file is corrupt or was replaced; re-copy it or re-run `edgefer convert`"
                )
        return manifest
