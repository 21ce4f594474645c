"""Modules that mix features in the ways a seed pack must not mix seeds, and modules that break
seedhp's model contract (tests/train/test_custom.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Flat(nn.Module):
    """Linear -> ReLU -> mix(h) -> Linear, on the flattened input."""

    def __init__(self, shape: Sequence[int], num_classes: int, hidden: int = 24) -> None:
        super().__init__()
        self.fc = nn.Linear(math.prod(shape), hidden)
        self.head = nn.Linear(hidden, num_classes)

    def mix(self, h: Tensor) -> Tensor:
        return h

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.mix(F.relu(self.fc(x.flatten(1)))))


class Normalize(_Flat):
    def mix(self, h: Tensor) -> Tensor:
        return 4 * F.normalize(h, dim=1)


class Softmax(_Flat):
    def mix(self, h: Tensor) -> Tensor:
        return torch.softmax(h, dim=1) * h.shape[1]


class MeanCentre(_Flat):
    def mix(self, h: Tensor) -> Tensor:
        return h - h.mean(1, keepdim=True)


class ShortBatchMixer(_Flat):
    """Mixes features only in a batch of fewer than 16 examples: as a kernel that takes another
    path for a short last evaluation batch would. A probe that evaluates only full batches
    passes it."""

    def mix(self, h: Tensor) -> Tensor:
        return h - h.mean(1, keepdim=True) if h.shape[0] < 16 else h


class WideMixer(_Flat):
    """Mixes features only past 100 of them: as a kernel that changes its algorithm past a size
    would. Under the layers engine a pack of K has 24 K features, so only packs of 5 or more
    seeds mix; a probe of packs of 2 and 4 alone would pass it."""

    def mix(self, h: Tensor) -> Tensor:
        return h - h.mean(1, keepdim=True) if h.shape[1] > 100 else h


class FunctionalDropout(_Flat):
    def mix(self, h: Tensor) -> Tensor:
        return F.dropout(h, 0.3, self.training)


class Noise(_Flat):
    def mix(self, h: Tensor) -> Tensor:
        return h + 0.1 * torch.randn_like(h) if self.training else h


class LayerNormed(_Flat):
    def __init__(self, shape: Sequence[int], num_classes: int, hidden: int = 24) -> None:
        super().__init__(shape, num_classes, hidden)
        self.norm = nn.LayerNorm(hidden)

    def mix(self, h: Tensor) -> Tensor:
        return self.norm(h)


class GroupNormed(nn.Module):
    """conv -> GroupNorm(2 groups) -> ReLU -> pool -> Linear: images (C, H, W)."""

    def __init__(self, shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(shape[0], 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.norm(self.conv(x)))
        return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))


class Attention(nn.Module):
    """The flattened input as 8 tokens, one self-attention layer, mean over tokens."""

    def __init__(self, shape: Sequence[int], num_classes: int, dim: int = 16) -> None:
        super().__init__()
        self.tokens = 8
        self.embed = nn.Linear(math.prod(shape) // self.tokens, dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        t = self.embed(x.flatten(1).unflatten(1, (self.tokens, -1)))
        h, _ = self.attn(t, t, t, need_weights=False)
        return self.head(h.mean(1))


class Embedded(nn.Module):
    """Each input value quantised to one of 16 levels and embedded: nn.Embedding."""

    def __init__(self, shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(16, 4)
        self.head = nn.Linear(math.prod(shape) * 4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        levels = (x * 4).round().clamp(-8, 7).long() + 8
        return self.head(self.emb(levels.flatten(1)).flatten(1))


# Broken contracts


class NeedsDepth(nn.Module):
    def __init__(self, shape: Sequence[int], num_classes: int, depth: int) -> None:
        super().__init__()


def not_a_module(shape: Sequence[int], num_classes: int) -> str:
    return "a string"


class WrongOutput(_Flat):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)[:, :3]


def flat_blocks() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """A loader whose examples have five axes."""
    return (torch.zeros(10, 1, 2, 2, 2, 2), torch.zeros(10)), (
        torch.zeros(4, 1, 2, 2, 2, 2),
        torch.zeros(4),
    )


def float_labels() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    return (torch.zeros(10, 6), torch.rand(10)), (torch.zeros(4, 6), torch.rand(4))


def one_array() -> Tensor:
    return torch.zeros(10, 6)
