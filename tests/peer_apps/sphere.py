"""hydra-optuna-sweeper's sphere example app, as its users write it, for seedhp_optuna:
no seed key, a float return, an optional failure."""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    if cfg.get("check_imports", False):  # what the sweeper imported before this job
        heavy = [m for m in ("torch", "mlflow", "scipy") if m in sys.modules]
        if heavy:
            raise RuntimeError(f"the sweeper imported {heavy}")
    if cfg.get("return_none", False):
        return None  # type: ignore[return-value]
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
