"""One function that keeps credentials out of everything edgefer prints, logs or sends.

A source such as ``rtsp://user:password@camera/stream`` carries a password in the
URL's userinfo. It can reach a log line, systemd's ``STATUS=``, an event, a metric
label or an error message, also inside exception texts written by OpenCV or a
driver; each of those edges passes its text through :func:`redact`.
"""

from __future__ import annotations

import logging
import re

#: ``scheme://userinfo@``; the userinfo runs to the last ``@`` before the host's end (a password may
#: hold an unescaped ``@``), never across whitespace, quotes or a path.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#\"'<>]*)@")

REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (``rtsp://***@host/...``)."""
    if "@" not in text:  # the common case costs one scan
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (message, arguments and traceback alike) passes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Make every handler of ``logger`` (default: the root logger) redact what it writes."""
    for handler in (logger or logging.getLogger()).handlers:
        fmt = handler.formatter
        handler.setFormatter(RedactingFormatter(fmt._fmt if fmt else None, fmt.datefmt if fmt else None))
