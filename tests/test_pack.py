from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from seedhp.data import load_synthetic, split
from seedhp.models import CNN, MLP, ResNet9, build_seeded, resnet18
from seedhp.pack import Pack
from seedhp.seeds import derive_seeds
from seedhp.train import TrainSettings, train

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "factory",
    [
        functools.partial(MLP, hidden=[8]),
        functools.partial(CNN, widths=[4, 8]),
        functools.partial(ResNet9, width=4),
        resnet18,
    ],
)
def test_each_seeds_slice_is_its_own_model(factory) -> None:  # type: ignore[no-untyped-def]
    shape = (3, 8, 8)
    seeds = [derive_seeds(s) for s in range(3)]
    models = [build_seeded(factory, shape, 5, s.init) for s in seeds]
    pack = Pack(models)
    x = torch.randn(4, 3, *shape)  # (B, K, C, H, W)
    pack.eval()
    out = pack(x)
    for k, m in enumerate(models):
        m.eval()
        alone = build_seeded(factory, shape, 5, seeds[k].init)
        assert all(
            torch.equal(a, b)
            for a, b in zip(m.state_dict().values(), alone.state_dict().values(), strict=True)
        )
        torch.testing.assert_close(out[:, k], m(x[:, k]), rtol=1e-4, atol=1e-5)
    assert all(p.shape[0] == 3 for p in pack.parameters())


def test_unknown_stateful_layer_is_refused() -> None:
    with pytest.raises(TypeError, match="LayerNorm"):
        Pack([nn.Sequential(nn.Flatten(), nn.LayerNorm(4))])


@pytest.mark.parametrize(
    "model",
    [
        functools.partial(MLP, hidden=[32], dropout=0.2),
        functools.partial(CNN, widths=[8, 16], dropout=0.1),
    ],
)
def test_a_seeds_run_is_bit_identical_whatever_its_pack(model) -> None:  # type: ignore[no-untyped-def]
    data = split(load_synthetic([1, 8, 8], 4, 300, 60), 0.2, 0)
    opt = functools.partial(torch.optim.AdamW, lr=3e-3)
    seeds = [derive_seeds(s) for s in range(8)]
    settings = TrainSettings(epochs=2, batch_size=32, grad_clip=1.0)
    alone = train(model, opt, data, seeds[:1], settings, CPU)
    pair = train(model, opt, data, seeds[:2], settings, CPU)
    eight = train(model, opt, data, seeds, settings, CPU)
    for m in ("train_loss", "val_loss", "val_acc"):
        assert alone[0].history[m] == pair[0].history[m] == eight[0].history[m], m
        assert pair[1].history[m] == eight[1].history[m], m
    assert alone[0].final["test_loss"] == eight[0].final["test_loss"]
