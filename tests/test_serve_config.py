"""`edgefer serve` configuration: strict types, errors with key and line, --check-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgefer.runtime.serve.config import ConfigError, ServeConfig, key_lines, load_config, parse_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "devices").glob("*/config.example.toml"))


def test_empty_config_is_all_defaults_with_privacy_on():
    config = parse_config("")
    assert config == ServeConfig()
    assert config.outputs.http.host == "127.0.0.1"
    assert not config.privacy.save_frames
    assert not config.outputs.jsonl.enabled and not config.outputs.mqtt.enabled


def test_values_are_typed():
    config = parse_config('[source]\nspec = "clip.mp4"\nloop = true\nmax_fps = 5\n'
                          '[outputs.mqtt]\nenabled = true\nport = 1884\n[smoothing]\nalpha = 1\n')
    assert config.source.spec == "clip.mp4" and config.source.loop is True
    assert config.source.max_fps == 5.0 and isinstance(config.source.max_fps, float)
    assert config.outputs.mqtt.port == 1884 and config.smoothing.alpha == 1.0


@pytest.mark.parametrize("text,line,key,message", [
    ('[source]\nspec = "0"\nfsp = 3\n', 3, "source.fsp", "unknown key"),
    ('[sorce]\nspec = "0"\n', 1, "sorce", "unknown key"),
    ('\n[outputs.http]\nport = 70000\n', 3, "outputs.http.port", "<= 65535"),
    ('[smoothing]\n\n\nalpha = "high"\n', 4, "smoothing.alpha", "must be a number"),
    ('[health]\nwatchdog = 1\n', 2, "health.watchdog", "true or false"),
    ('[source]\nwidth = 640.5\n', 2, "source.width", "an integer"),
    ('[outputs]\nemit = "sometimes"\n', 2, "outputs.emit", "one of 'all', 'faces', 'changes'"),
    ('[outputs.mqtt]\ntopic = "kiosk/#"\n', 2, "outputs.mqtt.topic", "wildcards"),
    ('[model]\nbackend = "tflite"\n', 2, "model.backend", "must be one of"),
    ('[source]\nreconnect_initial_s = 5.0\nreconnect_max_s = 1.0\n', 3, "source.reconnect_max_s", ">="),
    ('[detector]\nscale_factor = 1.0\n', 2, "detector.scale_factor", "> 1.0"),
    ('[outputs]\njsonl = 3\n', 2, "outputs.jsonl", "must be a table"),
    ('[model]\nzoom = 1.0\n', 2, "model.zoom", "must be 0 (no tighter view) or >= 0.5 and < 1"),
])
def test_errors_name_key_and_line(text, line, key, message):
    with pytest.raises(ConfigError) as err:
        parse_config(text, "kiosk.toml")
    text = str(err.value)
    assert text.startswith(f"kiosk.toml:{line}: {key}: "), text
    assert message in text


def test_missing_model_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.toml:2: model\.path: model file .*nope\.tflite does not exist"):
        parse_config('[model]\npath = "nope.tflite"\n', "c.toml")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        parse_config("[source\n", "c.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_key_lines_follow_tables_and_dotted_keys():
    lines = key_lines('# c\n[source]\nspec = "0"\n\n[outputs.mqtt]\n  host = "h" # x\noutputs.extra = 1\n')
    assert lines["source"] == 2 and lines["source.spec"] == 3
    assert lines["outputs.mqtt"] == 5 and lines["outputs.mqtt.host"] == 6
    assert lines["outputs.mqtt.outputs.extra"] == 7


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_device_config_examples_are_valid(example):
    config = load_config(example)
    assert config.outputs.http.host == "127.0.0.1"


def test_check_config_cli(tmp_path, tiny_artifacts):
    model = tiny_artifacts / "tiny_int8.tflite"
    good = tmp_path / "good.toml"
    good.write_text(f'[model]\npath = "{model}"\n')
    run = subprocess.run([sys.executable, "-m", "edgefer", "serve", "--config", str(good), "--check-config"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "configuration OK" in run.stdout and "tiny_int8.tflite" in run.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[model]\npath = "{model}"\n\n[outputs.http]\nprot = 1\n')
    run = subprocess.run([sys.executable, "-m", "edgefer", "serve", "--config", str(bad), "--check-config"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert f"{bad}:5: outputs.http.prot: unknown key" in run.stderr


def _dotted_fields(cls, prefix: str = "") -> list[str]:
    import dataclasses

    names = []
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            names.extend(_dotted_fields(f.default_factory, dotted + "."))
        else:
            names.append(dotted)
    return names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_device_config_examples_document_every_key(example):
    documented = key_lines(example.read_text())
    missing = [k for k in _dotted_fields(ServeConfig) if k not in documented]
    assert not missing, f"{example} does not document {missing}"
