"""A Hydra app whose score is a cheap deterministic function of (lr, seed), for comparing
`hydra/sweeper=seedhp_optuna` with `seedhp.optimize` on the same study
(tests/test_optuna_api.py imports `score` from here)."""

import math

import hydra
from omegaconf import DictConfig


def score(lr: float, seed: int) -> float:
    """Best near lr = 0.01; each seed moves it by a fixed amount in [0, 0.05)."""
    return -((math.log10(lr) + 2.0) ** 2) + 0.05 * ((seed * 7919) % 11) / 11


@hydra.main(version_base=None, config_path="lr-seed-conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return score(float(cfg.lr), int(cfg.seed))


if __name__ == "__main__":
    main()
