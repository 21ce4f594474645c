"""Pack engines for any nn.Module: how K seeds of one model are trained as one module.

Every engine presents the same face to the training loop: parameters and buffers stacked on a
leading seed axis (K, ...), forward (B, K, *shape) -> (B, K, classes), `K`, and
`set_dropout_generators`. They differ in how seed k's forward is computed:

- `layers` (seedhp.pack.Pack): the model's own forward on seed-packed activations, with packed
  Linear/Conv2d/BatchNorm/Dropout layers. Fast, and bit-identical for any K on CPU, but only for
  modules whose every op acts per channel; a module that mixes features (F.normalize over dim
  1, a mean over features, GroupNorm) would mix seeds.
- `vmap` (VmapPack): torch.func.vmap over the seed axis of `functional_call` of the model: the
  model's forward sees one seed's (B, *shape) batch, so any module is computed as written. Its
  batched matrix products may round differently for different K on CPU, and randomness inside
  forward is refused (vmap randomness="error"): seed k's draws could not come from its own
  stream.
- `none` (LoopPack, K = 1): each seed trained alone, one after another; its dropout and any
  `torch.rand` in forward draw from the global generator, seeded from the seed's `dropout`
  stream. Always correct.

seedhp.train.probe picks the first engine whose seed 0 is the same alone and in a pack of 2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

ENGINES = ("layers", "vmap", "none")


class StackedPack(nn.Module):
    """K copies of one module's state, stacked (K, ...); subclasses say how seed k's forward
    is computed from its slice. The module itself is kept once as a stateless template."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.K = len(models)
        params, buffers = stack_module_state(list(models))
        frozen = {n for n, p in models[0].named_parameters() if not p.requires_grad}
        self.names = list(params)
        self.buffer_names = list(buffers)
        self.params = nn.ParameterList(
            nn.Parameter(params[n].detach(), requires_grad=n not in frozen) for n in self.names
        )
        for i, n in enumerate(self.buffer_names):
            self.register_buffer(f"buffer{i}", buffers[n].detach().clone())
        self._template = [copy.deepcopy(models[0])]  # a list: not a registered submodule

    @property
    def template(self) -> nn.Module:
        return self._template[0]

    def state(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Stacked (K, ...) parameters and buffers by the model's own names."""
        return (
            dict(zip(self.names, self.params, strict=True)),
            {n: getattr(self, f"buffer{i}") for i, n in enumerate(self.buffer_names)},
        )

    def train(self, mode: bool = True) -> StackedPack:
        super().train(mode)
        self.template.train(mode)
        return self

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> StackedPack:
        super()._apply(fn, recurse)
        self.template._apply(fn, recurse)  # .to(device) moves the template too
        return self

    def set_dropout_generators(self, generators: Sequence[torch.Generator]) -> None:
        """Nothing to set: vmap refuses randomness, and a LoopPack's seed draws from the global
        generator, which the training loop seeds from its dropout stream."""


class VmapPack(StackedPack):
    """forward: x (B, K, *shape) -> (B, K, classes), vmapped over the seed axis."""

    def forward(self, x: Tensor) -> Tensor:
        params, buffers = self.state()

        def one(p: dict[str, Tensor], b: dict[str, Tensor], xk: Tensor) -> Tensor:
            return functional_call(self.template, (p, b), (xk,))

        return vmap(one, in_dims=(0, 0, 1), out_dims=1, randomness="error")(params, buffers, x)


class LoopPack(StackedPack):
    """forward: each seed's slice through the module in turn (the `none` engine uses K = 1)."""

    def forward(self, x: Tensor) -> Tensor:
        params, buffers = self.state()
        outs = [
            functional_call(
                self.template,
                ({n: p[k] for n, p in params.items()}, {n: b[k] for n, b in buffers.items()}),
                (x[:, k],),
            )
            for k in range(self.K)
        ]
        return torch.stack(outs, 1)
