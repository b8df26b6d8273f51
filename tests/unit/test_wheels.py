"""Downloading a pinned wheel as data (``goalgraph.wheels``), offline: pip reads a local folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from goalgraph.wheels import WheelDownloadError, download_wheel


def _wheel(folder: Path, name: str, version: str) -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/data.txt", "payload")
        info = f"{name}-{version}.dist-info"
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


def test_the_pinned_wheel_is_downloaded_and_a_missing_one_is_a_clear_error(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "gg_data", "1.0")
    offline = ["--no-index", "--find-links", str(index)]
    (tmp_path / "out").mkdir()
    got = download_wheel("gg_data", "1.0", tmp_path / "out", timeout_s=120, pip_options=offline)
    assert got.name == "gg_data-1.0-py3-none-any.whl"
    assert zipfile.ZipFile(got).read("gg_data/data.txt") == b"payload"
    (tmp_path / "none").mkdir()
    with pytest.raises(WheelDownloadError, match=r"cannot download gg_data==2\.0: .+"):
        download_wheel("gg_data", "2.0", tmp_path / "none", timeout_s=120, pip_options=offline)
