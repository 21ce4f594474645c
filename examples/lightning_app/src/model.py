"""An MLP LightningModule, logging as the template's MNISTLitModule does (val/acc, ...)."""

import lightning as L
import torch
from torch import nn


class DigitsLitModule(L.LightningModule):
    def __init__(self, hidden: int = 64, lr: float = 0.05, dropout: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10)
        )
        self.best_val_acc = 0.0

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x)
        return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        loss, acc = self._step(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        self.log("train/acc", acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> None:
        loss, acc = self._step(batch)
        self.log("val/loss", loss, on_epoch=True)
        self.log("val/acc", acc, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        acc = float(self.trainer.callback_metrics.get("val/acc", 0.0))
        if not self.trainer.sanity_checking:
            self.best_val_acc = max(self.best_val_acc, acc)
        self.log("val/acc_best", self.best_val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> None:
        loss, acc = self._step(batch)
        self.log("test/loss", loss, on_epoch=True)
        self.log("test/acc", acc, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
