"""hydra-optuna-sweeper's sphere example app, as its users write it, for seedhp_optuna:
no seed key, a float return, an optional failure."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    if cfg.get("return_none", False):
        return None  # type: ignore[return-value]
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
