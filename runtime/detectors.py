"""The detector a configuration describes, set up for still images or for streams.

Kept apart from :mod:`.detect` (the detectors), :mod:`.tracking` (which follows the
faces a detector found in a stream) and :mod:`.stills` (which looks at a photo twice),
which build on the detectors: this module composes them, and none of them imports it.
"""

from __future__ import annotations

from .detect import Detector, DetectorConfig, HaarDetector, YuNetDetector, create_engine
from .stills import StillConfig, StillDetector
from .tracking import TrackConfig, TrackingDetector


def create_detector(config: str | DetectorConfig = "haar", tracking: TrackConfig | None = None,
                    still: StillConfig | bool = False) -> Detector:
    """The detector a config (or a name, see :func:`~.detect.config_for`) describes.

    ``still`` (``True`` or a :class:`~.stills.StillConfig`): for still images, each
    detected on its own at the resolution its smallest face needs, with a padded second
    look when nothing is found (see :mod:`.stills`); ``tracking`` is then ignored.
    Otherwise, for streams: with ``tracking.detect_every`` > 1 it runs every N-th frame
    only and the faces it found are tracked in between (see :mod:`.tracking`).
    """
    return for_input(create_engine(config), tracking, still)


def for_input(base: HaarDetector | YuNetDetector, tracking: TrackConfig | None = None,
              still: StillConfig | bool = False) -> Detector:
    """``base`` set up for still images (``still``) or for streams (``tracking``); see :func:`create_detector`."""
    if still:
        return StillDetector(base, still if isinstance(still, StillConfig) else StillConfig())
    if tracking is None or tracking.detect_every == 1:
        return base
    return TrackingDetector(base, tracking)
