"""The base of every error edgefer raises on purpose, so callers can catch them all at once."""

from __future__ import annotations


class EdgeferError(Exception):
    """Something the user can fix: a missing model, an unreadable image, a camera that cannot be opened.

    The message says what went wrong, where, and what to do about it.
    """


class ImageError(EdgeferError, ValueError):
    """An image given to :class:`~edgefer.EmotionRecognizer` is missing, unreadable or not an image array."""
