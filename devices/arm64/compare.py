#!/usr/bin/env python3
"""Compare `edgefer detect` events from the arm64 root file system with the amd64 one, write the report.

    python3 devices/arm64/compare.py --work DIR --suite bookworm --rootfs ROOT --out devices/results/arm64-bookworm.json

DIR (written by check.sh) holds ``<arch>/<kit>+<backend>+<core>/<media>.jsonl`` (arm64 runs per emulated
core, amd64 runs with core ``native``), ``kits.txt`` (lines ``arch kit install-status verify-status``),
and per arch and kit ``<arch>-<kit>-install.log``, ``-verify.log`` and ``-versions.json``.
Every arm64 event must match its amd64 twin (same Debian, same kit, same commands): same frames, same
faces (boxes exact), same labels, and every number within TOLERANCE (the events carry 4 decimals, so
1e-4 is one unit in the last digit).
Timestamps, timings and source paths differ by design and are not compared. No timing is written:
speed under an emulator says nothing about a board. Standard library only: runs with the host's python3.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

TOLERANCE = 1e-4
IGNORED = {"timestamp", "time", "timings_ms", "source"}


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of one detect run (stdout; other lines are not events)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def diff(a: Any, b: Any, where: str, found: list[str]) -> float:
    """Append each difference between a and b (amd64) to found; return the largest numeric gap seen."""
    if isinstance(a, dict) and isinstance(b, dict):
        gap = 0.0
        for key in sorted(set(a) | set(b)):
            if key in IGNORED:
                continue
            if key not in a or key not in b:
                found.append(f"{where}.{key}: only in {'amd64' if key in b else 'arm64'}")
                continue
            gap = max(gap, diff(a[key], b[key], f"{where}.{key}", found))
        return gap
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            found.append(f"{where}: {len(a)} items on arm64, {len(b)} on amd64")
            return 0.0
        return max([diff(x, y, f"{where}[{i}]", found) for i, (x, y) in enumerate(zip(a, b))], default=0.0)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, int) and isinstance(b, int):  # frame numbers, boxes, sizes: exact
            if a != b:
                found.append(f"{where}: {a} on arm64, {b} on amd64")
            return 0.0
        gap = abs(float(a) - float(b))
        if not math.isfinite(gap) or gap > TOLERANCE + 1e-9:  # 1e-9: decimal 4-digit values in binary
            found.append(f"{where}: {a} on arm64, {b} on amd64")
        return gap if math.isfinite(gap) else math.inf
    if a != b:
        found.append(f"{where}: {a!r} on arm64, {b!r} on amd64")
    return 0.0


def what_a_user_sees(events: list[dict[str, Any]], reference: list[dict[str, Any]]) -> tuple[list[str], int, int]:
    """The differences a user reads in the events, frame by frame: faces found, then labels.

    Returns the lines and the counts of frames with another number of faces and with other labels.
    Listed before the numeric ones, which would otherwise fill the report's first lines on a clip.
    """
    lines, faces, labels = [], 0, 0
    for i, (a, b) in enumerate(zip(events, reference)):
        mine = [f.get("label") for f in a.get("faces", [])]
        theirs = [f.get("label") for f in b.get("faces", [])]
        if len(mine) != len(theirs):
            faces += 1
            lines.append(f"events[{i}]: {len(mine)} faces on arm64, {len(theirs)} on amd64 ({mine} against {theirs})")
        elif mine != theirs:
            labels += 1
            lines.append(f"events[{i}]: labels {mine} on arm64, {theirs} on amd64")
    return lines, faces, labels


def compare_run(arm: Path, amd: Path) -> dict[str, Any]:
    """One media file of one arm64 run against amd64."""
    events, reference = read_events(arm), read_events(amd)
    found: list[str] = []
    gap = diff(events, reference, "events", found)
    seen, other_faces, other_labels = what_a_user_sees(events, reference)
    return {
        "media": arm.stem,
        "events": len(events),
        "faces": sum(len(e.get("faces", [])) for e in events),
        "faces_amd64": sum(len(e.get("faces", [])) for e in reference),
        "labels": sorted({f.get("label") for e in events for f in e.get("faces", []) if f.get("label")}),
        "frames_with_other_faces": other_faces,
        "frames_with_other_labels": other_labels,
        "max_abs_difference": round(gap, 6),
        "match": not found and bool(events),
        "differences": (seen + found)[:20] if events else ["no events from the arm64 run"],
    }


def verify_lines(log: Path) -> list[str]:
    """verify.sh's summary: its PASS/FAIL/SKIP lines (the latency table under it is left out)."""
    if not log.exists():
        return []
    return [line.rstrip() for line in log.read_text().splitlines() if line[:5] in ("PASS ", "FAIL ", "SKIP ")]


def install_notes(log: Path) -> list[str]:
    """What install.sh said it skipped or changed (its 'note:' and 'warning:' lines)."""
    if not log.exists():
        return []
    return [line.rstrip() for line in log.read_text().splitlines() if line.startswith(("note: ", "warning: "))]


def kits(work: Path) -> dict[str, Any]:
    """Each architecture's and kit's install.sh and verify.sh outcome and the versions in its venv."""
    out: dict[str, Any] = {}
    for line in (work / "kits.txt").read_text().splitlines():
        arch, kit, install, verify = line.split()
        versions = work / f"{arch}-{kit}-versions.json"
        out.setdefault(arch, {})[kit] = {
            "install_rc": int(install),
            "install_notes": install_notes(work / f"{arch}-{kit}-install.log"),
            "verify_rc": None if verify == "none" else int(verify),
            "verify": verify_lines(work / f"{arch}-{kit}-verify.log"),
            "versions": json.loads(versions.read_text() or "{}") if versions.exists() else {},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, type=Path, help="folder with the runs' outputs")
    p.add_argument("--suite", required=True, help="Debian suite of the root file system")
    p.add_argument("--rootfs", required=True, type=Path, help="the root file system (for its Debian version)")
    p.add_argument("--out", required=True, type=Path, help="report to write")
    args = p.parse_args(argv)

    runs = []
    arm64 = args.work / "arm64"
    for run in sorted(arm64.iterdir()) if arm64.is_dir() else []:
        kit, backend, cpu = run.name.split("+")
        for events in sorted(run.glob("*.jsonl")):
            twin = args.work / "amd64" / f"{kit}+{backend}+native" / events.name
            result: dict[str, Any] = {"kit": kit, "backend": backend, "qemu_cpu": cpu}
            if twin.exists():
                result.update(compare_run(events, twin))
            else:
                result.update(media=events.stem, match=False, differences=[f"no amd64 run {twin.name}"])
            runs.append(result)
    kit_results = kits(args.work)
    kits_ok = set(kit_results) == {"arm64", "amd64"} and all(
        k["install_rc"] == 0 and k["verify_rc"] == 0 for arch in kit_results.values() for k in arch.values())
    qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout.split("\n")
    report = {
        "what": "devices/<kit>/install.sh and verify.sh, then edgefer detect on ../shared/media, in an arm64 "
                "Debian root file system under qemu-user and in an amd64 one of the same Debian (natively); "
                "each arm64 event compared with its amd64 twin",
        "command": "make arm64-check (devices/arm64/check.sh)",
        "suite": args.suite,
        "debian_version": (args.rootfs / "etc" / "debian_version").read_text().strip(),
        "emulator": qemu[0],
        "host": platform.machine(),
        "kits": kit_results,
        "tolerance": {"numbers": TOLERANCE, "boxes_labels_frames": "exact", "not_compared": sorted(IGNORED)},
        "comparisons": runs,
        "kits_ok": kits_ok,
        "ok": kits_ok and bool(runs) and all(r["match"] for r in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in runs:
        status = "same as amd64" if r["match"] else "DIFFERS: " + "; ".join(r["differences"][:3])
        print(f"  {r['kit']:<13} {r['backend']:<7} {r['qemu_cpu']:<11} {r['media']:<16} "
              f"{r.get('events', 0):>3} events {r.get('faces', 0):>3} faces  {status}")
    if not kits_ok or not runs:
        return 1
    return 0 if report["ok"] else 3  # 3: the kits work, but arm64 events differ from amd64 (see the report)


if __name__ == "__main__":
    sys.exit(main())
