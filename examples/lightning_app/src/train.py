"""A Lightning app in the shape of lightning-hydra-template's src/train.py. Nothing here imports
seedhp; its sweepers drive it, and `callbacks=with_seedhp` adds seedhp's Lightning callback:

    python src/train.py -m hydra/sweeper=seedhp 'seed=range(0,5)' callbacks=with_seedhp
"""

import os
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))  # what rootutils.setup_root does
import sys  # noqa: E402

sys.path.insert(0, str(ROOT))  # `src.model` as the template imports it (rootutils' pythonpath)


def train(cfg: DictConfig) -> dict[str, Any]:
    if cfg.get("seed"):  # the template's line: seed=0 (and null) leave the seed unset
        L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    if cfg.get("train"):
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_metrics = dict(trainer.callback_metrics)
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best or None)
    return {**train_metrics, **trainer.callback_metrics}


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metric_dict = train(cfg)
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metric_dict:  # the template raises here too
        raise Exception(f"Metric value not found! <metric_name={name}>")
    return float(metric_dict[name])


if __name__ == "__main__":
    main()
