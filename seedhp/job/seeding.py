"""Another app's job starts from its seed: Python's, NumPy's and torch's global generators.

An app that seeds nothing, or skips seed 0 (lightning-hydra-template's `if cfg.get("seed"):
seed_everything(cfg.seed)`), still gets a distinct, reproducible run per seed. The generators
are seeded as Lightning's `seed_everything(seed)` seeds them, so an app that does seed itself
starts from the same state either way. seedhp's own task draws every stream from its own
generators (seedhp.train.seeds) and is not touched.
"""

from __future__ import annotations

import random


def seed_globals(seed: int) -> None:
    import numpy as np  # here: a sweep of an app that never trains imports neither
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy's legacy seed is 32-bit
    torch.manual_seed(seed)  # every CUDA device's generator too
