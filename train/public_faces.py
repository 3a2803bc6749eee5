"""The only faces a committed figure may show: faces from public-domain photos.

FER2013's images carry no licence and KDEF allows only a few named identities in
publications, so run figures never draw a dataset face. Figures that need a face under
their overlay (Grad-CAM) take :class:`PublicDomainFace` objects, which only this module
makes, from photos whose licence allows it: NASA's astronaut portrait of Eileen Collins
(public domain; shipped inside scikit-image as ``skimage.data.astronaut``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublicDomainFace:
    """A grey face crop from a public-domain photo, with its credit line."""

    image: np.ndarray  # (H, W) uint8
    credit: str


def public_domain_faces() -> list[PublicDomainFace]:
    """The faces of the public-domain sample photos available here (none without scikit-image)."""
    from edgefer.runtime.detect import HaarDetector
    from edgefer.runtime.preprocess import to_grey
    from edgefer.samples import astronaut_bgr

    try:
        photo = astronaut_bgr()
    except FileNotFoundError as exc:
        log.warning("no public-domain sample face (%s); figures will show heat maps only", exc)
        return []
    grey = to_grey(photo)
    faces = []
    for box in HaarDetector().detect(grey)[:1]:
        faces.append(PublicDomainFace(box.crop(grey).copy(), "NASA (public domain): astronaut Eileen Collins"))
    return faces
