"""Optimizers beyond torch.optim's, each a factory `(params, **hyperparameters) -> Optimizer`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def sgd_scaled_vectors(
    params: Iterable[Tensor],
    lr: float,
    momentum: float = 0.85,
    weight_decay: float = 0.0,
    nesterov: bool = True,
    vector_lr_scale: float = 64.0,
) -> torch.optim.SGD:
    """Nesterov SGD whose per-channel vectors (batch-norm biases) take `vector_lr_scale` times the
    learning rate and 1/`vector_lr_scale` the weight decay, so their per-step decay lr * wd is
    the weights' (airbench's "bias scaler"). Frozen parameters are left out.

    Parameters arrive packed (seed axis first), so a per-seed vector is a 2-D (K, n) tensor.
    """
    trained = [p for p in params if p.requires_grad]
    vectors = [p for p in trained if p.ndim <= 2]
    others = [p for p in trained if p.ndim > 2]
    groups: list[dict[str, Any]] = [
        {"params": others},
        {
            "params": vectors,
            "lr": lr * vector_lr_scale,
            "weight_decay": weight_decay / vector_lr_scale,
        },
    ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]],
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        nesterov=nesterov,
    )
