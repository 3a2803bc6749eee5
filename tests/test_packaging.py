"""pyproject's package configuration: every folder that ships files is a listed package (no setuptools warning)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_package_data_lives_in_listed_packages():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, dirs = tool["packages"], tool["package-dir"]
    for package, patterns in tool["package-data"].items():
        # setuptools warns ("Package ... is absent from the `packages` configuration") for data in an unlisted folder
        assert package in packages, f"{package} ships data but is not in packages"
        assert all("/" not in p for p in patterns), f"{package}: {patterns} reach into a folder that is no package"
        parent, _, leaf = package.rpartition(".")
        folder = ROOT / dirs[package] if package in dirs else ROOT / dirs[parent] / leaf
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"{package}: nothing matches {pattern} in {folder}"
    for package in packages:
        parent, _, leaf = package.rpartition(".")
        folder = ROOT / dirs[package] if package in dirs else ROOT / dirs[parent] / leaf
        assert folder.is_dir(), f"{package}: {folder} does not exist"
