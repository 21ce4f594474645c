"""The pack invariant on any CPU: a seed's run is bitwise the same alone and in packs of 2 and
8, for every bundled model, under several thread counts and instruction-set limits.

Each cell of the grid is a fresh process (tests/train/invariance.py): the thread count and the
instruction sets oneDNN and ATen may use are fixed when torch starts. ONEDNN_MAX_CPU_ISA caps
the convolutions' kernels, ATEN_CPU_CAPABILITY the elementwise and reduction kernels'; a cap the
CPU lacks leaves its default. One cell runs in `make test`; the grid in `make test-all`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli_env
from tests.train.invariance import MODELS

ISAS = {
    "default": {},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "onednn-avx512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
}
THREADS = (1, 2, 4)
FAST = (1, "onednn-avx2")  # the cell in make test: single-threaded, convolutions capped at AVX2


def _grid() -> list[object]:
    cells = [(t, isa) for isa in ISAS for t in THREADS]
    return [
        pytest.param(
            t, isa, id=f"{isa}-{t}threads", marks=() if (t, isa) == FAST else pytest.mark.slow
        )
        for t, isa in cells
    ]


@pytest.mark.parametrize(("threads", "isa"), _grid())
def test_every_bundled_model_is_bit_identical_in_any_pack(threads: int, isa: str) -> None:
    models = list(MODELS) if (threads, isa) != FAST else [m for m in MODELS if m != "resnet18"]
    env = cli_env({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **ISAS[isa]})
    done = subprocess.run(
        [sys.executable, "-m", "tests.train.invariance", str(threads), *models],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["model"] for line in lines] == models
    assert all(line["threads"] == threads for line in lines)
    assert {line["model"]: line["differs"] for line in lines} == {m: [] for m in models}
