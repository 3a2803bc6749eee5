"""devices/: shell scripts (shellcheck, argument handling, config generation), the systemd unit, verify.sh."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgefer.runtime.serve.config import parse_config

from .conftest import MEDIA, REPO

DEVICES = REPO / "devices"
BOARDS = ("raspberry-pi", "jetson")
SCRIPTS = sorted(DEVICES.rglob("*.sh"))
VENV = Path(sys.prefix)


def _sh(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=timeout)


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
    assert SCRIPTS
    run = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS)], capture_output=True, text=True, cwd=DEVICES)
    assert run.returncode == 0, run.stdout + run.stderr


def _render_unit(tmp_path: Path, board: str | None) -> Path:
    """The unit as install.sh writes it (prefix = this venv, so ExecStart exists), plus the board's drop-ins."""
    text = (DEVICES / "edgefer.service").read_text().replace("/opt/edgefer", str(VENV))
    if board:
        for dropin in sorted((DEVICES / board / "edgefer.service.d").glob("*.conf")):
            text += "\n" + dropin.read_text()
    unit = tmp_path / "edgefer.service"
    unit.write_text(text)
    return unit


@pytest.mark.parametrize("board", [None, *BOARDS])
def test_unit_passes_systemd_analyze_verify(tmp_path, board):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)")
    unit = _render_unit(tmp_path, board)
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    # verify only warns (exit 0) about unknown keys: any output is a finding.
    assert run.returncode == 0 and not run.stdout.strip() and not run.stderr.strip(), run.stdout + run.stderr


def test_unit_is_a_hardened_notify_service():
    text = (DEVICES / "edgefer.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert int(settings["WatchdogSec"]) > 0 and settings["RestartPreventExitStatus"] == "2"
    for key, value in {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "PrivateTmp": "yes", "DevicePolicy": "closed", "DeviceAllow": "char-video4linux rw"}.items():
        assert settings[key] == value, key
    assert "--check-config" in settings["ExecStartPre"]


def test_unit_exposure_is_low(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = _render_unit(tmp_path, None)
    run = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True,
                         text=True, cwd=tmp_path)
    found = re.search(r"Overall exposure level for edgefer.service: ([0-9.]+)", run.stdout + run.stderr)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot score units offline: {run.stderr.strip()[:200]}")
    assert float(found.group(1)) <= 1.5, run.stdout  # measured 1.3 with systemd 252 (Debian 12)


_PROBE = """
import mmap, os, sys
import numpy as np
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("writable+executable memory was allowed: the filter is not in force")
except OSError:
    pass
try:
    os.setpriority(os.PRIO_PROCESS, 0, 1)
    sys.exit("setpriority (@resources) was allowed: the filter is not in force")
except OSError:
    pass
import cv2
from edgefer.runtime.classifier import EmotionClassifier, backend_installed
from edgefer.runtime.detect import HaarDetector
from edgefer.runtime.limits import usable_cores
HaarDetector().detect(np.zeros((240, 320), np.uint8))
assert cv2.imdecode(cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))[1], cv2.IMREAD_COLOR) is not None
for name in ("litert", "onnx"):
    if backend_installed(name):
        c = EmotionClassifier(None, name, usable_cores())  # threads as the service passes them
        print(name, c.classify([np.zeros((64, 64), np.uint8)] * 3).scores.shape)
        c.close()
"""


def test_backends_run_under_the_units_seccomp_rules(tmp_path):
    """MemoryDenyWriteExecute= and SystemCallFilter=~... of the unit, applied with libseccomp as systemd
    does (devices/lib/seccomp_exec.c): LiteRT/XNNPACK, ONNX Runtime and OpenCV must work under them."""
    import ctypes.util

    library = ctypes.util.find_library("seccomp")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not library or not compiler or shutil.which("systemd-analyze") is None:
        pytest.skip("needs a C compiler, libseccomp and systemd-analyze (apt-get install gcc libseccomp2 systemd)")
    exe = tmp_path / "seccomp_exec"
    build = subprocess.run([compiler, "-O1", "-o", str(exe), str(DEVICES / "lib" / "seccomp_exec.c"),
                            f"-l:{library}"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    text = (DEVICES / "edgefer.service").read_text()
    denied_groups = [g for line in re.findall(r"^SystemCallFilter=~(.*)$", text, re.M) for g in line.split()]
    assert "@privileged" in denied_groups and re.search(r"^MemoryDenyWriteExecute=yes$", text, re.M)
    listing = subprocess.run(["systemd-analyze", "syscall-filter", *denied_groups], capture_output=True, text=True)
    calls = sorted({w for w in listing.stdout.split() if re.fullmatch(r"[a-z_0-9]+", w)})
    assert "setuid" in calls and "setpriority" in calls
    args = [str(exe), "--mdwe", *[a for c in calls for a in ("--deny", c)], "--", sys.executable, "-c", _PROBE]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Operation not permitted" not in run.stderr, run.stderr  # e.g. ONNX Runtime pinning its threads
    assert run.stdout.strip(), "no backend is installed to try"


def test_installer_lets_the_service_reach_only_its_broker_and_camera():
    script = ('BOARD=raspberry-pi; source lib/common.sh; MQTT_HOST=192.0.2.10; '
              'SOURCE="rtsp://admin:secret@198.51.100.7:554/stream"; render_network_dropin')
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=DEVICES)
    assert run.returncode == 0, run.stderr
    allowed = re.findall(r"^IPAddressAllow=(.*)$", run.stdout, re.M)
    assert allowed == ["192.0.2.10", "198.51.100.7"] and "secret" not in run.stdout
    run = subprocess.run(["bash", "-c", "BOARD=jetson; source lib/common.sh; SOURCE=0; network_hosts"],
                         capture_output=True, text=True, cwd=DEVICES)
    assert run.returncode == 0 and run.stdout == ""
    unit = (DEVICES / "edgefer.service").read_text()
    assert "IPAddressDeny=any" in unit and "IPAddressAllow=localhost" in unit


@pytest.mark.parametrize("board", BOARDS)
def test_generated_config_is_valid_and_carries_the_options(board):
    run = _sh(str(DEVICES / board / "install.sh"), "--print-config", "--source", "rtsp://cam/stream",
              "--backend", "onnx", "--mqtt-host", "10.0.0.5", "--mqtt-topic", "shop/kiosk-1", "--http-port", "9200")
    assert run.returncode == 0, run.stderr
    config = parse_config(run.stdout, f"{board} generated")
    assert config.source.spec == "rtsp://cam/stream" and config.model.backend == "onnx"
    assert config.outputs.mqtt.enabled and config.outputs.mqtt.host == "10.0.0.5"
    assert config.outputs.mqtt.topic == "shop/kiosk-1"
    assert config.outputs.http.port == 9200 and config.outputs.http.host == "127.0.0.1"
    assert config.outputs.jsonl.enabled and not config.privacy.save_frames


@pytest.mark.parametrize("board,source,backend", [("raspberry-pi", "picamera2", "litert"), ("jetson", "csi:0", "onnx")])
def test_generated_config_defaults(board, source, backend):
    run = _sh(str(DEVICES / board / "install.sh"), "--print-config", "--source", 'odd "quoted" \\ name')
    assert parse_config(run.stdout).source.spec == 'odd "quoted" \\ name'
    config = parse_config(_sh(str(DEVICES / board / "install.sh"), "--print-config").stdout)
    assert config.source.spec == source and config.model.backend == backend
    assert not config.outputs.mqtt.enabled


@pytest.mark.parametrize("board,packages,optional", [
    ("raspberry-pi", ["python3-opencv"], ["python3-picamera2"]),
    ("jetson", ["python3-opencv"], ["nvidia-l4t-gstreamer", "python3-libnvinfer"]),
])
def test_install_dry_run_plan(board, packages, optional, tmp_path):
    run = _sh(str(DEVICES / board / "install.sh"), "--dry-run", "--prefix", str(tmp_path / "venv"),
              "--config-dir", str(tmp_path / "etc"))
    assert run.returncode == 0, run.stderr
    plan = run.stdout
    apt = [line.split() for line in plan.splitlines() if line.startswith("+ apt-get install")]
    assert all(p in apt[0] for p in packages)
    # Vendor-archive packages: installed where the archive has them, else skipped saying what is lost.
    for package in optional:
        line = next(line for line in plan.splitlines()
                    if line.startswith(f"+ apt-get install -y --no-install-recommends {package} "))
        assert "where the archive has it; else: " in line and "will not be available" in line
    assert f"+ python3 -m venv --system-site-packages {tmp_path / 'venv'}" in plan
    assert re.search(r"pip install --constraint \S+ .*\[(litert|onnx),serve\]", plan)
    assert f"+ write {tmp_path / 'etc'}/config.toml" in plan
    assert "--check-config" in plan and "+ systemctl enable --now edgefer.service" in plan
    assert not (tmp_path / "etc").exists()  # a dry run writes nothing
    no_service = _sh(str(DEVICES / board / "install.sh"), "--dry-run", "--no-service").stdout
    assert "systemctl" not in no_service


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--backend", "tflite"], "--backend must be litert, onnx or tensorrt"),
    (["--http-port", "http"], "--http-port must be a port number"),
    (["--http-port", "70000"], "--http-port must be 1-65535"),
    (["--mqtt-topic", "a/#"], "--mqtt-topic must be a plain topic"),
    (["--source"], "--source needs a value"),
    (["--source", "--dry-run"], "--source needs a value"),
])
def test_install_argument_errors(args, message):
    for board in BOARDS:
        run = _sh(str(DEVICES / board / "install.sh"), *args)
        assert run.returncode == 2 and message in run.stderr, (board, run.stderr)


def test_install_without_root_refuses():
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: the refusal cannot be observed")
    run = _sh(str(DEVICES / "raspberry-pi" / "install.sh"))
    assert run.returncode == 2 and "run as root" in run.stderr


def test_verify_arguments():
    for board in BOARDS:
        script = str(DEVICES / board / "verify.sh")
        assert _sh(script, "--help").returncode == 0
        run = _sh(script, "--prefix", "/nonexistent")
        assert run.returncode == 2 and "/nonexistent/bin/edgefer not found" in run.stderr
        run = _sh(script, "--frames", "0")
        assert run.returncode == 2 and "--frames must be a positive integer" in run.stderr


def test_verify_runs_on_this_machine(tmp_path, tiny_artifacts):
    """verify.sh against this venv: config check, detection on a photo, benchmarks/latency.py's table."""
    sample = MEDIA / "justin.jpg"
    if not sample.exists():
        pytest.skip(f"{sample} not available (../shared is beside the repo only in CI/dev)")
    model = tiny_artifacts / "tiny_int8.tflite"
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\npath = "{model}"\n')
    run = _sh(str(DEVICES / "raspberry-pi" / "verify.sh"), "--prefix", str(VENV), "--config", str(config),
              "--sample", str(sample), "--model", str(model), "--frames", "5", timeout=600)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "PASS  " + f"{config}: configuration OK" in out, out + run.stderr
    assert re.search(r"PASS  detection on .*justin\.jpg: \w+ -?\d", out), out
    assert re.search(r"PASS  latency benchmark \(.*benchmarks/latency\.py\) over 5 frames:", out), out
    assert re.search(r"^\s+\| .* \| edgefer litert int8, haar 1/6 \| .* \| [0-9.]+ \|", out, re.M), out
    assert ("SKIP  service" in out) or ("service:" in out)
