"""Lightning inside a seedhp sweep: its metrics in the job's seed-run, its epochs pruned.

    import lightning as L
    from seedhp.lightning import SeedhpCallback

    trainer = L.Trainer(callbacks=[SeedhpCallback()], ...)

In an app shaped like lightning-hydra-template, one file adds it to every run
(`configs/callbacks/seedhp.yaml`, then `callbacks: [default, seedhp]` in the defaults):

    seedhp:
      _target_: seedhp.lightning.SeedhpCallback

- Every metric Lightning holds at the end of an epoch (`trainer.callback_metrics`: what the
  module's `self.log` gave, reduced over the epoch) goes into the job's seed-run at
  step = epochs completed (1, 2, ...), as seedhp's own seed-runs record theirs; the metrics of
  `trainer.test` go in at its end. `val/acc` keeps its name.
- After each validation the objective (`monitor`; default: the sweep's objective) is reported
  to the trial's pruner (`seedhp.report_epoch`): when the pruner stops the trial, `fit` ends
  with `seedhp.Pruned` and the seed-run is recorded as pruned.
- It writes with its own MLflow client to the seed-run's store, so a Lightning `MLFlowLogger`
  on the same store or another one keeps working beside it.

Outside a seedhp sweep (a plain `python train.py`) it does nothing. Needs the extra:
`pip install 'seedhp[lightning]'`.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
from mlflow import MlflowClient
from mlflow.entities import Metric

from seedhp.job.hooks import current_seed_run, report_epoch


class SeedhpCallback(pl.Callback):
    def __init__(self, monitor: str | None = None) -> None:
        self.monitor = monitor
        self._sent: dict[tuple[str, int], float] = {}  # (name, step) -> value already logged
        self._client: MlflowClient | None = None
        self._before: dict[str, float] = {}  # the metrics as validation started

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._before = _floats(trainer.callback_metrics)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ref = current_seed_run()
        if ref is None or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        metrics = _floats(trainer.callback_metrics)
        # what validation gave now; the epoch's training metrics are reduced after it
        self._log({k: v for k, v in metrics.items() if self._before.get(k) != v}, epoch)
        name = self.monitor or ref.objective
        if name in metrics:
            report_epoch(epoch, metrics[name])  # raises seedhp.Pruned when the trial is pruned

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:  # everything the last epoch logged, its own hooks' too
            self._log(_floats(trainer.callback_metrics), trainer.current_epoch)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(_floats(trainer.callback_metrics), trainer.current_epoch)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(_floats(trainer.callback_metrics), trainer.current_epoch)

    def _log(self, metrics: dict[str, float], step: int) -> None:
        ref = current_seed_run()
        if ref is None or not metrics:
            return
        if self._client is None:
            self._client = MlflowClient(tracking_uri=ref.tracking_uri)
        new = {k: v for k, v in metrics.items() if self._sent.get((k, step)) != v}
        if not new:
            return
        now = _now_ms()
        self._client.log_batch(
            ref.run_id, metrics=[Metric(k, v, now, step) for k, v in sorted(new.items())]
        )
        self._sent.update({(k, step): v for k, v in new.items()})


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Lightning's scalar metrics (0-d tensors) as floats; NaN kept, as MLflow keeps it."""
    out = {}
    for name, value in metrics.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError, RuntimeError):  # not one number
            continue
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)
