"""``edgefer serve``: the headless kiosk detector run as a systemd service.

The service composes the runtime's frame sources, Haar detector, classifier and
pipeline; it adds per-face smoothing, camera reconnects, outputs (JSON lines,
MQTT, HTTP health and metrics) and systemd notification. Nothing is imported or
started at import time.
"""
