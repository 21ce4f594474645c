"""Your own model and data with seedhp, from the repository root:

    python -m seedhp -m seed='range(0,20)' model=custom \
        model._target_=examples.own_model.NormedMLP \
        data=custom data.source._target_=examples.own_model.breast_cancer

`NormedMLP` L2-normalises its hidden features (F.normalize over dim 1): an op that mixes
features, which the hand-written pack layers would also mix across seeds. seedhp's probe sees
that before training and packs it with another engine (train.pack_engine, tag
seedhp.pack_engine), so a seed's result is the same alone and in a pack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset


class NormedMLP(nn.Module):
    """Linear -> ReLU -> L2-normalise (times `scale`) -> LayerNorm -> Linear."""

    def __init__(
        self, shape: Sequence[int], num_classes: int, hidden: int = 64, scale: float = 4.0
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(int(np.prod(shape)), hidden)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, num_classes)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.fc(x.flatten(1)))
        return self.head(self.norm(F.normalize(h, dim=1) * self.scale))


def breast_cancer() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's bundled Wisconsin breast-cancer data (569 tumours, 30 features, 2
    classes) as (train, test) pairs of arrays: a fixed, stratified 25 % test part."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0
    )
    return (x_tr, y_tr), (x_te, y_te)


class Digits(Dataset[tuple[Tensor, int]]):
    """scikit-learn's 8x8 digits as a map-style torch Dataset of (image (1, 8, 8), label)."""

    def __init__(self, train: bool) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        parts = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
        self.x = torch.tensor(parts[0 if train else 1], dtype=torch.float32).view(-1, 1, 8, 8)
        self.y = parts[2 if train else 3]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.x[i], int(self.y[i])


def digits_dataset() -> tuple[Digits, Digits]:
    """The Dataset form of a loader: (train, test) Datasets."""
    return Digits(train=True), Digits(train=False)


class LayerNormMLP(nn.Module):
    """Flatten -> Linear -> LayerNorm -> ReLU -> Linear: a layer the hand-written pack lacks
    (benchmarks/packing.py measures how it packs)."""

    def __init__(self, shape: Sequence[int], num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(int(np.prod(shape)), hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GroupNormCNN(nn.Module):
    """[conv3x3 -> GroupNorm(8 groups) -> ReLU -> max-pool] per width -> average pool -> Linear."""

    def __init__(
        self, shape: Sequence[int], num_classes: int, widths: Sequence[int] = (32, 64)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = shape[0]
        for w in widths:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.GroupNorm(8, w),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
