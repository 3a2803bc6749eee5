"""Benchmarks: the latency harness (``latency.py``), accuracy per artifact (``accuracy.py``) and their helpers.

Run the scripts from the repository root (``python benchmarks/latency.py``); the
helpers import nothing heavier than numpy and OpenCV, except the plot of
``--compare`` (matplotlib) and the peer run (the ``fer`` package, in its own process).
"""
