from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from scipy import stats as sps
from torch import nn

from seedhp.train.data import load_synthetic, split
from seedhp.train.loop import Schedule, TrainSettings, init_from_data, per_seed_loss, train
from seedhp.train.models import CNN, MLP, AirBench, ResNet9, build_seeded, resnet18
from seedhp.train.optim import sgd_scaled_vectors
from seedhp.train.pack import Pack, PackedLinear
from seedhp.train.seeds import derive_seeds

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "factory",
    [
        functools.partial(MLP, hidden=[8]),
        functools.partial(CNN, widths=[4, 8]),
        functools.partial(ResNet9, width=4),
        resnet18,
        functools.partial(AirBench, widths=[4, 8, 8]),
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
        functools.partial(ResNet9, width=4),
        functools.partial(AirBench, widths=[4, 8, 8]),
    ],
)
def test_a_seeds_run_is_bit_identical_whatever_its_pack(model) -> None:  # type: ignore[no-untyped-def]
    data = split(load_synthetic([1, 8, 8], 4, 300, 60), 60, 0)
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


def test_a_diverging_seed_does_not_disturb_its_pack_mates() -> None:
    # on this edge (SGD lr 8.5, momentum 0.9) seeds 1 and 4 survive 6 epochs, the rest diverge
    data = split(load_synthetic([1, 8, 8], 4, 300, 60), 60, 0)
    model = functools.partial(MLP, hidden=[32])
    opt = functools.partial(torch.optim.SGD, lr=8.5, momentum=0.9)
    settings = TrainSettings(epochs=6, batch_size=32, schedule=Schedule("constant"))
    seeds = [derive_seeds(s) for s in range(8)]
    packed = train(model, opt, data, seeds, settings, CPU)
    alone = [train(model, opt, data, [s], settings, CPU)[0] for s in seeds]
    assert [r.status for r in packed] == [r.status for r in alone]
    assert {r.seeds.seed for r in packed if r.status == "finished"} == {1, 4}
    for p, a in zip(packed, alone, strict=True):
        assert p.diverged_epoch == a.diverged_epoch
        assert p.history["val_loss"] == a.history["val_loss"]  # up to its divergence, or all
        if p.status == "finished":
            assert p.final["test_loss"] == a.final["test_loss"]
        else:
            assert math.isnan(p.final["val_acc"])


def test_fast_kernels_agree_with_exact_runs_to_rounding_and_in_distribution() -> None:
    # channels-last grouped convolutions sum in another order: not bit-identical, but
    # per seed within 1e-4 in validation loss after 3 epochs, and as a distribution the same
    data = split(load_synthetic([1, 8, 8], 4, 400, 100), 80, 0)
    model = functools.partial(CNN, widths=[8, 16])
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    seeds = [derive_seeds(s) for s in range(32)]
    alone = [
        train(model, opt, data, [s], TrainSettings(3, 32, kernels="exact"), CPU)[0] for s in seeds
    ]
    packed = train(model, opt, data, seeds, TrainSettings(3, 32, kernels="fast"), CPU)
    for a, p in zip(alone, packed, strict=True):
        assert abs(a.history["val_loss"][-1] - p.history["val_loss"][-1]) < 1e-4
    va = [r.final["val_acc"] for r in alone]
    vp = [r.final["val_acc"] for r in packed]
    assert sps.ks_2samp(va, vp).pvalue > 0.05 and sps.mannwhitneyu(va, vp).pvalue > 0.05


def test_airbench_whitens_once_for_all_seeds_and_keeps_frozen_parts_frozen() -> None:
    data = split(load_synthetic([3, 8, 8], 4, 300, 60), 60, 0)
    seeds = [derive_seeds(s) for s in range(3)]
    models = [build_seeded(AirBench, (3, 8, 8), 4, s.init) for s in seeds]
    init_from_data(models, data)
    pack = Pack(models)
    opt = sgd_scaled_vectors(pack.parameters(), lr=0.05, weight_decay=1e-3)
    x, y = data.normalize(data.train.x[:32]), data.train.y[:32]
    for _ in range(3):
        opt.zero_grad()
        per_seed_loss(
            pack(x[:, None].expand(-1, 3, -1, -1, -1)), y[:, None].expand(-1, 3)
        ).sum().backward()
        opt.step()
    whiten, bn = pack.net[0], pack.net[4]
    # the whitening filters, set from the data, are the same for every seed and never trained
    reference = AirBench((3, 8, 8), 4)
    reference.init_from_data(data.normalize(data.train.x[:5000]))
    for k in range(3):
        assert torch.equal(whiten.weight[k], reference[0].weight)
        assert torch.equal(bn.weight[k], torch.ones(64))  # frozen unit scale
    assert not whiten.weight.requires_grad and not bn.weight.requires_grad
    assert not torch.equal(bn.bias, torch.zeros_like(bn.bias))  # the biases did train
    # whitened 2x2 patches have (close to) identity covariance
    patches = data.normalize(data.train.x).double().unfold(2, 2, 1).unfold(3, 2, 1)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    filters = reference[0].weight.double().reshape(24, 12)[:12]
    white = (patches - patches.mean(0)) @ filters.T
    cov = white.T @ white / len(white)
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=0.05, rtol=0.0)


def test_sgd_scaled_vectors_gives_batch_norm_biases_their_own_rate() -> None:
    pack = Pack([AirBench((3, 8, 8), 4, widths=[4, 8, 8]) for _ in range(2)])
    opt = sgd_scaled_vectors(pack.parameters(), lr=0.1, weight_decay=0.01, vector_lr_scale=64)
    weights, vectors = opt.param_groups
    assert weights["lr"] == 0.1 and vectors["lr"] == pytest.approx(6.4)
    assert vectors["lr"] * vectors["weight_decay"] == pytest.approx(0.1 * 0.01)
    assert all(p.ndim == 2 for p in vectors["params"])  # (K, channels): the BN biases
    assert len(vectors["params"]) == 6 and all(p.requires_grad for p in weights["params"])


def test_bf16_packs_on_the_cpu_compute_as_autocast_does_and_train_in_any_pack() -> None:
    """Autocast cannot see into the aligned bmm: it casts as autocast casts bmm (to bf16), so
    a bf16 CNN packs (its bf16 features meet fp32 weights there) and an MLP computes in bf16,
    and a seed's loss is the same alone, in a pack of 2 and of 4."""
    layer = PackedLinear([nn.Linear(4, 5), nn.Linear(4, 5)])
    f64 = PackedLinear([nn.Linear(3, 3).double(), nn.Linear(3, 3).double()])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer.seed_major(torch.randn(2, 3, 4)).dtype == torch.bfloat16
        x64 = torch.randn(2, 3, 3, dtype=torch.float64)
        assert f64.seed_major(x64).dtype == torch.float64  # as autocast leaves float64 alone
    data = split(load_synthetic([1, 8, 8], 4, 200, 40), 40, 0)
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    seeds = [derive_seeds(s) for s in range(4)]
    settings = TrainSettings(1, 32, precision="bf16")
    for model in (functools.partial(CNN, widths=[4, 8]), functools.partial(MLP, hidden=[16])):
        losses = [
            train(model, opt, data, seeds[:k], settings, CPU)[0].history["train_loss"]
            for k in (1, 2, 4)
        ]
        assert losses[0] == losses[1] == losses[2]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097])
def test_row_sums_are_each_rows_own_whatever_the_rows_beside_it(n: int) -> None:
    """Seed k's gradient norm is summed in an order fixed by n alone: its row gives the same
    bits alone, as the first of 2 rows and as the last of 8."""
    from seedhp.train.pack import row_sums

    x = torch.randn(8, n, generator=torch.Generator().manual_seed(n))
    alone = row_sums(x[7:])
    assert torch.equal(row_sums(x[6:])[1], alone[0]) and torch.equal(row_sums(x)[7], alone[0])
    torch.testing.assert_close(row_sums(x).double(), x.double().sum(1), rtol=1e-5, atol=1e-5)
    small = torch.arange(n, dtype=torch.float32)[None]  # integers: every partial sum exact
    assert row_sums(small).item() == n * (n - 1) // 2


@pytest.mark.parametrize("bias", [True, False])
def test_an_mlp_runs_seed_major_with_the_packed_layouts_values_bit_for_bit(bias: bool) -> None:
    """An MLP-shaped pack skips the packed layout's transposes between layers (Pack.chain):
    its outputs, dropout masks and every gradient are those of the packed layout's path."""
    seeds = [derive_seeds(s) for s in range(3)]
    factory = functools.partial(MLP, hidden=[24, 16], dropout=0.3)
    models = [build_seeded(factory, (1, 6, 6), 5, s.init) for s in seeds]
    if not bias:
        for m in models:
            for layer in m:
                if isinstance(layer, nn.Linear):
                    layer.bias = None
    x = torch.randn(7, 3, 1, 6, 6)  # (B, K, C, H, W)

    def run(seed_major: bool) -> list[torch.Tensor]:
        pack = Pack(models)
        assert pack.chain is not None
        if not seed_major:
            pack.chain = None
        pack.set_dropout_generators([torch.Generator().manual_seed(s.dropout) for s in seeds])
        out = pack(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return [out, *(p.grad for p in pack.parameters())]  # type: ignore[list-item]

    fast, layered = run(True), run(False)
    assert len(fast) == len(layered) == (7 if bias else 4)  # out, 3 weights (and biases)
    assert all(torch.equal(a, b) for a, b in zip(fast, layered, strict=True))


def test_a_net_that_is_not_mlp_shaped_keeps_the_packed_layout() -> None:
    seeds = [derive_seeds(s) for s in range(2)]
    cnn = [build_seeded(functools.partial(CNN, widths=[4]), (1, 6, 6), 5, s.init) for s in seeds]
    normed = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.BatchNorm1d(8), nn.Linear(8, 5))
    assert Pack(cnn).chain is None
    assert Pack([normed, copy.deepcopy(normed)]).chain is None  # batch norm: not elementwise

    class Doubled(MLP):  # a forward of its own is computed as written
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    own = [
        build_seeded(functools.partial(Doubled, hidden=[8]), (1, 6, 6), 5, s.init) for s in seeds
    ]
    pack = Pack(own).eval()
    assert pack.chain is None and not pack.prefolds
    x = torch.randn(4, 2, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(pack(x)[:, 1], own[1].eval()(x[:, 1]), rtol=1e-5, atol=1e-6)


def test_an_mlp_pack_gathers_its_batches_prefolded_with_the_same_records(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Batches of an MLP pack are gathered straight into its first layer's operand (Prefolded):
    every seed's curves, scores and weights are bit for bit those of the standardised path,
    also on seeds with their own splits."""
    from seedhp.train.data import split_many

    source = load_synthetic([1, 6, 6], 4, 300, 60)
    seeds = [derive_seeds(s) for s in range(3)]
    opt = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
    settings = TrainSettings(2, 32, eval_batch_size=50)  # partial batches everywhere
    model = functools.partial(MLP, hidden=[16], dropout=0.2)
    calls: list[bool] = []
    real = Pack.prefolds.fget  # type: ignore[attr-defined]

    def spy(self: Pack) -> bool:
        calls.append(real(self))
        return calls[-1]

    for data in (split(source, 60, 0), split_many(source, 60, [0, 1, 2])):
        monkeypatch.setattr(Pack, "prefolds", property(spy))
        prefolded = train(model, opt, data, seeds, settings, CPU, keep_state=True)
        monkeypatch.setattr(Pack, "prefolds", property(lambda self: False))
        plain = train(model, opt, data, seeds, settings, CPU, keep_state=True)
        for a, b in zip(prefolded, plain, strict=True):
            assert a.history["val_loss"] == b.history["val_loss"]
            assert {k: v for k, v in a.final.items() if k != "train_seconds"} == {
                k: v for k, v in b.final.items() if k != "train_seconds"
            }
            assert all(torch.equal(a.state[n], b.state[n]) for n in a.state)  # type: ignore[index]
    assert calls == [True, True]


def test_a_large_shared_evaluation_block_is_multiplied_in_place_with_the_same_results() -> None:
    """Evaluation gives every seed the same examples; a large block (SHARED_BLOCK_MIN) goes to
    the product as one block for all seeds (batch stride 0) instead of K copies: each seed's
    logits are bit for bit those of its copy, and of the seed alone."""
    from seedhp.train.pack import SHARED_BLOCK_MIN, Prefolded

    seeds = [derive_seeds(s) for s in range(3)]
    models = [
        build_seeded(functools.partial(MLP, hidden=[16]), (1, 16, 16), 5, s.init) for s in seeds
    ]
    pack, alone = Pack(models).eval(), Pack(models[1:2]).eval()
    n = SHARED_BLOCK_MIN // 257 + 7  # rows of 256 features and a 1
    block = torch.cat([torch.randn(n, 256), torch.ones(n, 1)], 1)
    with torch.no_grad():
        shared = pack(Prefolded(block.unsqueeze(0).expand(3, n, 257)))
        copied = pack(Prefolded(block.unsqueeze(0).expand(3, n, 257).contiguous()))
        one = alone(Prefolded(block.unsqueeze(0)))
    assert torch.equal(shared, copied) and torch.equal(shared[:, 1], one[:, 0])


def test_the_cuda_form_of_a_packed_linear_computes_the_same_function() -> None:
    """On CUDA a packed Linear is baddbmm with the bias broadcast (no K-invariance to keep);
    run here on the CPU it agrees with the folded form to rounding, values and gradients."""
    from seedhp.train.pack import _broadcast_linear, _FoldedLinear

    torch.manual_seed(0)
    x, w, b = torch.randn(3, 9, 7), torch.randn(3, 5, 7), torch.randn(3, 5)
    out = []
    for f in (lambda *t: _FoldedLinear.apply(*t), _broadcast_linear):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        y = f(*leaves)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out.append([y, *(t.grad for t in leaves)])
    for a, c in zip(*out, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
