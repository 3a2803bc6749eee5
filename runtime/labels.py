"""The canonical emotion label order and the aliases datasets use for it."""

from __future__ import annotations

#: Canonical order of the 7 classes; model outputs follow this order unless an
#: artifact's manifest says otherwise.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "af": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
    "ne": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
}


def canonical_label(name: str) -> str | None:
    """Map a dataset's class name (any case, e.g. ``"Happiness"``) to a canonical label.

    Returns ``None`` for names that are not one of the 7 emotions (e.g. CK+'s
    ``contempt``), so callers can skip them with a warning.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = key.split("_", 1)[-1] if key[:1].isdigit() and "_" in key else key
    return _ALIASES.get(key)
