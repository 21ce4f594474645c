"""`python -m seedhp`: one seed-run; `python -m seedhp -m seed='range(0,500)'`: a seed sweep."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from seedhp.job import exit_on_config_error, run

# absolute, so the config tree is found however this module is reached (python -m, import)
CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def main(cfg: DictConfig) -> float:
    with exit_on_config_error():
        return run(cfg)


if __name__ == "__main__":
    main()
