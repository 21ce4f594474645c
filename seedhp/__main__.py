"""`python -m seedhp`: one seed-run; `python -m seedhp -m seed='range(0,500)'`: a seed sweep."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from seedhp.job import exit_on_config_error, run


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    with exit_on_config_error():
        return run(cfg)


if __name__ == "__main__":
    main()
