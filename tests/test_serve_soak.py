"""Short soak of `edgefer serve` (the long one is `make soak`): no RSS or fd growth late in the run."""

from __future__ import annotations


from edgefer.runtime.serve.soak import run_soak

from .conftest import MEDIA
from .serve_support import write_clip

#: Bounds between the half-way and the last checkpoint; a leak of one frame (~60 KB at 160x120)
#: or one socket per frame would pass them within seconds.
MAX_RSS_GROWTH_MIB = 8.0
MAX_FD_GROWTH = 2


def test_short_soak_has_no_late_growth(tmp_path, tiny_artifacts):
    clip = MEDIA / "fer_test.mp4"
    if not clip.exists():  # faces make the classifier and tracker work; a generated clip still soaks the rest
        clip = write_clip(tmp_path / "clip.avi", frames=60)
    report = run_soak(str(clip), frames=10**9, interval_s=3.0, model=str(tiny_artifacts / "tiny_int8.tflite"),
                      workdir=tmp_path / "soak", max_seconds=30.0)
    checkpoints = report["checkpoints"]
    assert len(checkpoints) >= 6, report
    assert report["exit_status"] == 0
    frames = [c["frames"] for c in checkpoints]
    assert frames == sorted(frames) and frames[-1] > frames[0] > 0  # it kept processing
    growth = report["late_growth"]
    assert growth["rss_mib"] <= MAX_RSS_GROWTH_MIB, report
    assert growth["fds"] <= MAX_FD_GROWTH, report
    assert set(checkpoints[-1]["latency_ms"]) >= {"read", "detect", "preprocess", "infer", "total"}
