"""A model whose seed-runs fail for some init seeds: a planted, deterministic training failure."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from seedhp.train.models import MLP


class FlakyMLP(MLP):
    """Raises in its first training step for about half of all init seeds. Whether it does is
    drawn (on the CPU, after the weights) from the init stream, so it is fixed per seed."""

    def __init__(
        self, shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (16,)
    ) -> None:
        super().__init__(shape, num_classes, hidden=hidden)
        self.doomed = bool(torch.rand((), device="cpu") < 0.5)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.doomed:
            raise RuntimeError("planted failure for this seed")
        return super().forward(x)
