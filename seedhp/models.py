"""The models: ordinary single-seed nn.Modules, built by a factory `(shape, num_classes)`.

seedhp trains K seeds at once by packing K of these into one module (seedhp.pack). A model may
therefore only mix information within one example's channels through the layers pack knows
(Linear, Conv2d, BatchNorm2d, Dropout); everything else in its forward must act per channel
(activations, pooling, residual adds, flatten(1), scaling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, *body: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Scale(nn.Module):
    """Multiply by a constant (ResNet-9's 0.125 on the logits)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def _require_image(shape: Sequence[int], model: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        from seedhp.errors import ConfigError

        raise ConfigError(
            "model", model, f"needs image data (C, H, W); the data are {tuple(shape)}"
        )
    c, h, w = shape
    return int(c), int(h), int(w)


class MLP(nn.Sequential):
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden width -> Linear."""

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(shape)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class CNN(nn.Sequential):
    """[conv3x3-BN-ReLU-maxpool2] per width -> global average pool -> Dropout -> Linear."""

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        widths: Sequence[int] = (32, 64),
        dropout: float = 0.0,
    ) -> None:
        c, _, _ = _require_image(shape, "cnn")
        layers: list[nn.Module] = []
        for w in widths:
            layers += [conv_bn(c, int(w)), nn.MaxPool2d(2, ceil_mode=True)]
            c = int(w)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(c, num_classes))
        super().__init__(*layers)


class ResNet9(nn.Sequential):
    """The fast-CIFAR ResNet-9 (Page, "How to train your ResNet"; DAWNBench 2018), the family of
    Picard's 10^4-seed scan. Widths w, 2w, 4w, 8w (w=64 is the original, 6.57 M parameters)."""

    def __init__(self, shape: Sequence[int], num_classes: int, width: int = 64) -> None:
        c, _, _ = _require_image(shape, "resnet9")
        w = int(width)

        def pool() -> nn.Module:
            return nn.MaxPool2d(2, ceil_mode=True)

        super().__init__(
            conv_bn(c, w),
            conv_bn(w, 2 * w),
            pool(),
            Residual(conv_bn(2 * w, 2 * w), conv_bn(2 * w, 2 * w)),
            conv_bn(2 * w, 4 * w),
            pool(),
            conv_bn(4 * w, 8 * w),
            pool(),
            Residual(conv_bn(8 * w, 8 * w), conv_bn(8 * w, 8 * w)),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(8 * w, num_classes, bias=False),
            Scale(0.125),
        )


def resnet18(shape: Sequence[int], num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 with a small-image stem: a 3x3 stride-1 first conv and no max-pool
    (the usual CIFAR adaptation), so 8x8 and 32x32 inputs keep their resolution."""
    import torchvision

    c, _, _ = _require_image(shape, "resnet18")
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(c, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_seeded(
    factory: object, shape: Sequence[int], num_classes: int, init_seed: int
) -> nn.Module:
    """Build one model with its weights drawn from the `init` stream, leaving the global RNG as
    it was: the same init seed gives bit-identical weights whatever ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return factory(shape=tuple(shape), num_classes=num_classes)  # type: ignore[operator]
