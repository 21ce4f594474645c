"""The models: ordinary single-seed nn.Modules, built by a factory `(shape, num_classes)`.

seedhp trains K seeds at once by packing K of these into one module (seedhp.train.pack). A model
may therefore only mix information within one example's channels through the layers pack knows
(Linear, Conv2d, BatchNorm2d, Dropout); everything else in its forward must act per channel
(activations, pooling, residual adds, flatten(1), scaling).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from seedhp.errors import ConfigError

# check_model runs a model with more parameter and buffer bytes than this on the meta device
META_CHECK_BYTES = 64 * 2**20


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
        for h in _widths("model.hidden", hidden):
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
        for w in _widths("model.widths", widths):
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


class AirBench(nn.Sequential):
    """A CIFAR-10 network of the airbench94 class (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds
    on a single GPU", 2024), written here from the paper's description:

    a frozen 2x2 patch-whitening convolution (its filters are the eigenvectors of the training
    images' 2x2-patch covariance, scaled by 1/sqrt(eigenvalue), and their negatives; set by
    `init_from_data`, identical for every seed), GELU, then three groups of
    [conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU] of widths 64/256/256, a global
    max-pool and a bias-free linear head scaled by 1/9. Convolutions start as identity on their
    first input-width filters (dirac init); batch norms have a frozen unit scale, a trained bias,
    eps 1e-12 and momentum 0.4 (airbench's 0.6 in its own convention).

    Left out (the training recipe, not the network): lookahead averaging, test-time flip/translate
    augmentation, alternating-flip augmentation, training the whitening bias for 3 epochs. The
    preset `experiment=airbench` gives the rest of the recipe (batch 1024, Nesterov SGD with
    BN biases at 64x the learning rate, label smoothing 0.2, crop(pad 2)+flip, 10 epochs).
    """

    def __init__(
        self, shape: Sequence[int], num_classes: int, widths: Sequence[int] = (64, 256, 256)
    ) -> None:
        c, h, w = _require_image(shape, "airbench")
        widths = _widths("model.widths", widths)
        # floor pooling on 32x32 as the original (31 -> 15 -> 7 -> 3); ceil on small images
        small = min(h, w) - 1 < 2 ** len(widths)
        whiten = nn.Conv2d(c, 2 * c * 4, kernel_size=2, padding=0, bias=True)
        whiten.weight.requires_grad_(False)
        whiten.bias.requires_grad_(False)  # type: ignore[union-attr]
        nn.init.zeros_(whiten.bias)  # type: ignore[arg-type]
        layers: list[nn.Module] = [whiten, nn.GELU()]
        c = 2 * c * 4
        for width in widths:
            layers += [
                _dirac_conv(c, int(width)),
                nn.MaxPool2d(2, ceil_mode=small),
                _frozen_scale_bn(int(width)),
                nn.GELU(),
                _dirac_conv(int(width), int(width)),
                _frozen_scale_bn(int(width)),
                nn.GELU(),
            ]
            c = int(width)
        layers += [
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(c, num_classes, bias=False),
            Scale(1 / 9),
        ]
        super().__init__(*layers)

    def init_from_data(self, images: Tensor, eps: float = 5e-4) -> dict[str, Tensor]:
        """Set the whitening filters from normalised training images (N, C, H, W); returns the
        state_dict entries it set, to copy into the pack-mates (they do not depend on the seed)."""
        whiten = self[0]
        assert isinstance(whiten, nn.Conv2d)
        c = images.shape[1]
        patches = images.double().unfold(2, 2, 1).unfold(3, 2, 1)  # (N, C, H-1, W-1, 2, 2)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]).reshape(c * 4, c, 2, 2)
        with torch.no_grad():
            whiten.weight.copy_(torch.cat([filters, -filters]).to(whiten.weight.dtype))
        return {"0.weight": whiten.weight.detach().clone()}


def _widths(key: str, values: Sequence[int]) -> list[int]:
    """Layer widths: a non-empty list of integers >= 1 (an empty one would build a network
    without the layers its name promises)."""
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) > 0
    if not ok or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        shown = list(values) if isinstance(values, Sequence) else values
        raise ConfigError(key, shown, "a non-empty list of integers >= 1, e.g. [32, 64]")
    return [int(v) for v in values]


def _dirac_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])
    return conv


def _frozen_scale_bn(width: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(width, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn


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


class ModelFactory:
    """A model callable under seedhp's contract: called with `shape` (one example's shape) and
    `num_classes` when its signature accepts them, plus the keyword arguments already bound
    (Hydra's partial of every other `model.*` key); it must return an nn.Module. A wrong
    signature or return value is bad input (ConfigError, key `model._target_`)."""

    def __init__(self, target: Callable[..., Any], name: str) -> None:
        self.target, self.name = target, name
        try:
            self.signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):  # a builtin without one: call it and see
            self.signature = None

    def accepts(self, key: str) -> bool:
        if self.signature is None:
            return True
        params = self.signature.parameters.values()
        return key in self.signature.parameters or any(p.kind is p.VAR_KEYWORD for p in params)

    def __call__(self, shape: Sequence[int], num_classes: int) -> nn.Module:
        kwargs: dict[str, Any] = {}
        if self.accepts("shape"):
            kwargs["shape"] = tuple(shape)
        if self.accepts("num_classes"):
            kwargs["num_classes"] = num_classes
        if self.signature is not None:
            try:
                self.signature.bind(**kwargs)
            except TypeError as err:
                raise ConfigError(
                    "model._target_",
                    self.name,
                    f"cannot be called as seedhp calls a model ({err}); it is given shape= "
                    "and num_classes= where its signature has them, and every other model.* "
                    "key",
                ) from None
        try:
            model = self.target(**kwargs)
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(
                "model._target_", self.name, f"building the model raised {_said(err)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise ConfigError(
                "model._target_",
                self.name,
                f"returned a {type(model).__name__}, not a torch.nn.Module",
            )
        return model


def check_model(factory: ModelFactory, shape: Sequence[int], num_classes: int) -> None:
    """Build the model and run a batch of 2 zero examples through it in eval mode: it must
    give logits of shape (2, num_classes). Raises ConfigError otherwise.

    Where: the meta device allocates nothing, but its first call costs about 1 s of set-up;
    the CPU runs a small model in milliseconds. So a model of at most META_CHECK_BYTES of
    parameters and buffers is tried on the CPU first, and a bigger one (or one whose size is
    unknown until its first call: lazy layers) on the meta device first; when the first place
    cannot run it (an op with no kernel there: a CUDA-only op has no CPU kernel, many custom
    ops no meta kernel), the other is tried. Only when neither can is it refused, with the
    CPU's error."""
    batch = (2, *shape)
    try:
        with torch.device("meta"):
            on_meta: nn.Module | None = factory(shape, num_classes).eval()
    except ConfigError:
        raise
    except Exception:  # cannot even be built there
        on_meta = None
    places = ["cpu", "meta"] if on_meta is None or _small(on_meta) else ["meta", "cpu"]
    failed: BaseException | None = None
    for place in places:
        try:
            if place == "meta" and on_meta is not None:
                with torch.device("meta"):
                    out = on_meta(torch.zeros(batch))
            elif place == "cpu":
                with torch.no_grad():
                    out = factory(shape, num_classes).eval()(torch.zeros(batch))
            else:
                continue
            break
        except ConfigError:
            raise
        except Exception as err:
            failed = err if place == "cpu" or failed is None else failed
    else:
        raise ConfigError(
            "model._target_",
            factory.name,
            f"its forward on a batch of shape {batch} raised {_said(failed)}",
        ) from None
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != (2, num_classes):
        raise ConfigError(
            "model._target_",
            factory.name,
            f"returns {got} for a batch of shape {batch}; expected logits of shape "
            f"(2, {num_classes}): one score per class",
        )


def _small(model: nn.Module) -> bool:
    """At most META_CHECK_BYTES of parameters and buffers; False while any is uninitialised
    (a lazy layer's size is known only after its first call)."""
    try:
        tensors = [*model.parameters(), *model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors) <= META_CHECK_BYTES
    except Exception:  # torch refuses to size an UninitializedParameter
        return False


def _said(err: BaseException | None) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:300]


def build_seeded(
    factory: object, shape: Sequence[int], num_classes: int, init_seed: int
) -> nn.Module:
    """Build one model with its weights drawn from the `init` stream, leaving the global RNG as
    it was: the same init seed gives bit-identical weights whatever ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if isinstance(factory, ModelFactory):
            return factory(shape, num_classes)
        return factory(shape=tuple(shape), num_classes=num_classes)  # type: ignore[operator]
