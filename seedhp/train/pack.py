"""Packs: K seeds of one model trained as one module, parameters stacked on a leading seed axis.

`pack(models)` takes K ordinary, separately initialised modules of one architecture and returns
a `Pack` whose every parameter and buffer is (K, ...) with seed k's slice at [k]. Inside, a
batch travels seed-packed: (B, K*C, H, W) for images and (B, K*F) for features, so per-channel
layers (activations, pooling, batch norm, residual adds, flatten(1)) act on all seeds at once
unchanged, and only the layers that mix channels need a packed form:

- Linear: one batched matmul (bmm) over the seed axis, the bias folded into it.
- Conv2d: one grouped convolution (groups=K), or with `kernels="exact"` one convolution per seed.
- BatchNorm: statistics per channel, hence per seed, over the packed channels.
- Dropout: each seed draws its own mask from its own `dropout` generator.

Nothing in seed k's computation depends on its pack-mates: every packed op computes seed k
from seed k's slice alone. Whether it is also bit-identical for every K depends on the kernels,
chosen by measurement (torch 2.14.1, 2 CPU cores, digits CNN, per seed-run at K=8 vs K=1):

- "exact" (the CPU default): NCHW layout, per-seed convolutions. Every seed's metrics and
  weights are bit-identical for K in 1, 2, 8 under 1, 2 and 4 threads and capped instruction
  sets (tests/train/test_invariance.py), so a seed replays exactly alone; 1.2x. Reductions
  across a seed's own values (its gradient norm) are summed in an order fixed by their length
  alone (row_sums), not by a library kernel that splits the sum by K or thread count.
- "fast": channels-last layout and grouped convolutions, 2.8x. oneDNN's grouped Conv2d weight
  gradient, and BatchNorm2d/MaxPool2d in channels-last, sum in another order than at K=1, so
  seeds agree with their K=1 runs only to float rounding (tested within a tolerance and as
  distributions over 32 seeds). On CUDA packs always use grouped convolutions: K separate
  launches would forfeit the point of packing, and cuDNN picks algorithms by shape anyway.
The MLP's layers (bmm, bias in the GEMM) are exact and fast at once: 6.8x at K=32.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedhp.train.models import Scale

if TYPE_CHECKING:
    from seedhp.train.engines import StackedPack

KERNELS = ("exact", "fast")
SHARED_BLOCK_MIN = 2**17  # elements: _as_aligned passes a shared block this large as it is
_STATELESS_OK = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.CELU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    Scale,
)


def _autocast(*tensors: Tensor | None) -> list[Tensor | None]:
    """What CPU autocast does to bmm's operands, which it cannot see inside the aligned
    products: floating operands but float64 to its dtype; nothing outside autocast."""
    if not torch.is_autocast_enabled("cpu"):
        return list(tensors)
    low = torch.get_autocast_dtype("cpu")
    return [
        t.to(low) if t is not None and t.is_floating_point() and t.dtype != torch.float64 else t
        for t in tensors
    ]


def _aligned_bmm(a: Tensor, b: Tensor) -> Tensor:
    """torch.bmm whose result for seed k does not depend on k's position or on K (CPU).

    MKL computes a batch element differently depending on where its block sits in memory: for
    (65, 64) @ (64, 10), elements at odd positions, whose 2,600-byte blocks start off a 64-byte
    boundary, came out different in the last bits from the same product computed alone. Here
    every operand and result has its own 64-byte-aligned block per seed (measured invariant
    for every position and K tried)."""
    K, m, _ = a.shape
    out = _aligned((K, m, b.shape[2]), a)
    torch.bmm(_as_aligned(a), _as_aligned(b), out=out)
    return out


class _FoldedLinear(torch.autograd.Function):
    """K Linear layers on seed-major input, x (K, B, in) -> (K, B, out): each seed's
    [x | 1] @ [W^T ; b], the bias a last row of W as PackedLinear folds it, written straight
    into 64-byte-aligned blocks. The products, their operands' values and their memory layout
    are those of an aligned bmm of cat([x, 1]) and cat([W^T, b]) (what PackedLinear computed
    before, so its results are bit for bit the same), with one copy of each operand instead of
    a concatenation and then an aligned copy."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, prefolded: bool = False
    ) -> Tensor:
        n_out, n_in = weight.shape[1], weight.shape[2]
        rows = n_in + (bias is not None)
        if prefolded:  # x is [x | 1] already, as gathered (Prefolded)
            a = _as_aligned(x)
        else:
            K, B, _ = x.shape
            a = _aligned((K, B, rows), x)
            a[:, :, :n_in].copy_(x)
            if bias is not None:
                a[:, :, n_in].fill_(1.0)
        w = _aligned((a.shape[0], rows, n_out), weight)
        w[:, :n_in].copy_(weight.transpose(1, 2))
        if bias is not None:
            w[:, n_in].copy_(bias)
        K, B, _ = a.shape
        out = _aligned((K, B, n_out), x)
        torch.bmm(a, w, out=out)
        ctx.save_for_backward(a, w)
        ctx.n_in = n_in
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        a, w = ctx.saved_tensors
        n_in = ctx.n_in
        g = _as_aligned(g)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _aligned_bmm(g, w.transpose(1, 2))[:, :, :n_in]
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            full = _aligned_bmm(a.transpose(1, 2), g)  # (K, rows, out)
            gw = full[:, :n_in].transpose(1, 2)
            gb = full[:, n_in] if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


@dataclass(frozen=True)
class Prefolded:
    """A batch gathered straight into a pack's first operand (Pack.prefolds): a (K, B, F + 1)
    tensor whose row b of block k is seed k's b-th example, standardised and flattened, then 1."""

    a: Tensor


def _as_aligned(t: Tensor) -> Tensor:
    """`t` itself where it has the layout _aligned gives, or is the transpose of one (the
    backward's operands: MKL packs either the same way, measured bit for bit), or is one
    large aligned block for every seed (batch stride 0: the evaluation's shared examples; the
    same products, measured bit for bit, without K copies; a small block is copied, which
    measured faster), else an aligned copy."""
    _, m, n = t.shape
    per_line = 64 // t.element_size()
    stride = -(-m * n // per_line) * per_line
    shared = (0, n, 1) if m * n >= SHARED_BLOCK_MIN else None
    if t.data_ptr() % 64 == 0 and t.stride() in ((stride, n, 1), (stride, 1, m), shared):
        return t
    return _aligned(t.shape, t).copy_(t)


def _aligned(shape: Sequence[int], like: Tensor) -> Tensor:
    """An uninitialised (K, m, n) tensor whose every (m, n) block starts on a 64-byte
    boundary (the batch stride rounded up to whole 64-byte lines)."""
    K, m, n = shape
    per_line = 64 // like.element_size()
    stride = -(-m * n // per_line) * per_line
    buf = torch.empty(K * stride + per_line, dtype=like.dtype, device=like.device)
    offset = (-(buf.data_ptr() // like.element_size())) % per_line
    return buf[offset : offset + K * stride].as_strided((K, m, n), (stride, n, 1))


def _stack(tensors: Sequence[Tensor | None]) -> Tensor | None:
    if tensors[0] is None:
        return None
    return torch.stack([t.detach() for t in tensors])  # type: ignore[union-attr]


def _param(tensors: Sequence[Tensor | None]) -> nn.Parameter | None:
    """K tensors stacked as one parameter, frozen if the first is (airbench's whitening)."""
    first, stacked = tensors[0], _stack(tensors)
    if first is None or stacked is None:
        return None
    return nn.Parameter(stacked, requires_grad=first.requires_grad)


class PackedLinear(nn.Module):
    """K Linear layers: weight (K, out, in), bias (K, out); (B, K*in) -> (B, K*out)."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.K = len(layers)
        self.weight: nn.Parameter = _param([m.weight for m in layers])  # type: ignore[assignment]
        self.bias = _param([m.bias for m in layers])

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        xk = x.reshape(B, self.K, -1).transpose(0, 1)  # (K, B, in)
        return self.seed_major(xk).transpose(0, 1).reshape(B, -1)

    def seed_major(self, xk: Tensor) -> Tensor:
        """(K, B, in) -> (K, B, out)."""
        if xk.is_cuda:  # cuBLAS promises no K-invariance anyway: the fastest form
            return _broadcast_linear(xk, self.weight, self.bias)
        # The bias is a last row of W against a column of ones, so autograd reduces its
        # gradient inside the GEMM. A broadcast add would reduce it over a (K, B, out) view
        # whose strides, and so whose summation order, change with K.
        return _FoldedLinear.apply(*_autocast(xk, self.weight, self.bias))


def _broadcast_linear(xk: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """(K, B, in) -> (K, B, out) with the bias broadcast into the product (CUDA's form)."""
    wt = weight.transpose(1, 2)
    return torch.bmm(xk, wt) if bias is None else torch.baddbmm(bias[:, None, :], xk, wt)


class PackedConv2d(nn.Module):
    """K Conv2d layers: weight (K, O, C/g, kh, kw), bias (K, O).

    (B, K*C, H, W) -> (B, K*O, H', W').
    """

    def __init__(self, layers: Sequence[nn.Conv2d], grouped: bool = False) -> None:
        super().__init__()
        first = layers[0]
        self.grouped = grouped  # False: one convolution per seed (exact across K on CPU)
        if first.padding_mode != "zeros":
            raise TypeError(f"cannot pack Conv2d with padding_mode={first.padding_mode!r}")
        self.K = len(layers)
        self.in_channels, self.groups = first.in_channels, first.groups
        self.stride: Any = first.stride
        self.padding: Any = first.padding  # a tuple, or "same" / "valid"
        self.dilation: Any = first.dilation
        self.weight: nn.Parameter = _param([m.weight for m in layers])  # type: ignore[assignment]
        self.bias = _param([m.bias for m in layers])

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, groups)

    def forward(self, x: Tensor) -> Tensor:
        if self.grouped or x.is_cuda:
            bias = None if self.bias is None else self.bias.flatten()
            return self._conv(x, self.weight.flatten(0, 1), bias, self.K * self.groups)
        c = self.in_channels
        outs = [
            self._conv(
                x[:, k * c : (k + 1) * c],
                self.weight[k],
                None if self.bias is None else self.bias[k],
                self.groups,
            )
            for k in range(self.K)
        ]
        return outs[0] if self.K == 1 else torch.cat(outs, 1)


class PackedBatchNorm(nn.Module):
    """K BatchNorm1d/2d layers: weight, bias, running stats (K, C); acts on (B, K*C[, H, W])."""

    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, layers: Sequence[nn.modules.batchnorm._BatchNorm]) -> None:
        super().__init__()
        first = layers[0]
        self.K, self.eps, self.momentum = len(layers), first.eps, first.momentum
        self.track_running_stats = first.track_running_stats
        self.weight = _param([m.weight for m in layers])
        self.bias = _param([m.bias for m in layers])
        self.register_buffer("running_mean", _stack([m.running_mean for m in layers]))
        self.register_buffer("running_var", _stack([m.running_var for m in layers]))
        self.register_buffer(
            "num_batches_tracked",
            None
            if first.num_batches_tracked is None
            else first.num_batches_tracked.detach().clone(),
        )

    def forward(self, x: Tensor) -> Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as in nn.BatchNorm
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None

        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.view(-1)  # a view: running stats update in place

        return F.batch_norm(
            x,
            flat(self.running_mean),
            flat(self.running_var),
            flat(self.weight),
            flat(self.bias),
            use_batch_stats,
            factor,
            self.eps,
        )


class PackedDropout(nn.Module):
    """Dropout with one mask stream per seed: seed k draws from `generators[k]` only."""

    def __init__(self, p: float, K: int) -> None:
        super().__init__()
        self.p, self.K = p, K
        self.generators: list[torch.Generator] = []

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if len(self.generators) != self.K:
            raise RuntimeError("PackedDropout needs one generator per seed: call set_generators")
        per_seed = x[:, : x.shape[1] // self.K].shape  # seed k's slice: (B, C[, H, W])
        keep = torch.stack(
            [
                torch.rand(per_seed, generator=g, device=g.device) >= self.p
                for g in self.generators
            ],
            1,
        )  # (B, K, C[, H, W])
        return x * keep.reshape(x.shape).to(x.dtype) / (1 - self.p)

    def seed_major(self, h: Tensor) -> Tensor:
        """The same masks on seed-major activations (K, B, F): seed k's from generators[k]."""
        if not self.training or self.p == 0:
            return h
        if len(self.generators) != self.K:
            raise RuntimeError("PackedDropout needs one generator per seed: call set_generators")
        keep = torch.stack(
            [
                torch.rand(h.shape[1:], generator=g, device=g.device) >= self.p
                for g in self.generators
            ]
        )
        return h * keep.to(h.dtype) / (1 - self.p)


def _pack_module(modules: Sequence[nn.Module], fast: bool) -> nn.Module | None:
    """The packed form of K corresponding modules, or None to keep the module as it is."""
    first = modules[0]
    if isinstance(first, nn.Linear):
        return PackedLinear(modules)  # type: ignore[arg-type]
    if isinstance(first, nn.Conv2d):
        return PackedConv2d(modules, grouped=fast)  # type: ignore[arg-type]
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return PackedBatchNorm(modules)  # type: ignore[arg-type]
    if isinstance(first, nn.Dropout):
        return PackedDropout(first.p, len(modules))
    if isinstance(first, nn.Flatten):
        if first.start_dim != 1:
            raise TypeError("cannot pack Flatten with start_dim != 1")
        return None
    has_state = any(True for _ in first.parameters(recurse=False)) or any(
        True for _ in first.buffers(recurse=False)
    )
    if has_state and not isinstance(first, _STATELESS_OK):
        raise TypeError(
            f"cannot pack {type(first).__name__}: it holds parameters or buffers and "
            "seedhp.train.pack has no packed form for it"
        )
    return None


class Pack(nn.Module):
    """K seeds of one model. forward: x (B, K, *shape) -> logits (B, K, classes).

    kernels: "exact" (bit-identical for any K on CPU) or "fast" (channels-last, grouped
    convolutions); see the module's docstring.
    """

    def __init__(self, models: Sequence[nn.Module], kernels: str = "exact") -> None:
        super().__init__()
        if not models:
            raise ValueError("a pack needs at least one model")
        if kernels not in KERNELS:
            raise ValueError(f"kernels={kernels!r}; allowed: {', '.join(KERNELS)}")
        self.K, self.fast = len(models), kernels == "fast"
        net = copy.deepcopy(models[0])
        tables = [dict(m.named_modules()) for m in models]
        for name, _ in list(net.named_modules()):
            replacement = _pack_module([t[name] for t in tables], self.fast)
            if replacement is not None:
                if name == "":
                    net = replacement
                else:
                    net.set_submodule(name, replacement)
        self.net = net
        self.chain = _seed_major_chain(net)

    @property
    def prefolds(self) -> bool:
        """Whether a batch can come as Prefolded: an MLP-shaped pack whose first layer is a
        Linear with a bias (after a Flatten), on the CPU."""
        first = self._first_linear()
        return first is not None and first.bias is not None and not first.weight.is_cuda

    def _first_linear(self) -> PackedLinear | None:
        chain = self.chain or []
        head = chain[1:2] if chain[:1] and isinstance(chain[0], _SeedFlatten) else chain[:1]
        return head[0] if head and isinstance(head[0], PackedLinear) else None

    def forward(self, x: Tensor | Prefolded) -> Tensor:
        if isinstance(x, Prefolded):  # its first layer's operand is the batch as gathered
            first = self._first_linear()
            if self.chain is None or first is None:
                raise TypeError("this pack does not take Prefolded batches (Pack.prefolds)")
            a, w, b = _autocast(x.a, first.weight, first.bias)
            h = _FoldedLinear.apply(a, w, b, True)
            for m in self.chain[self.chain.index(first) + 1 :]:
                h = m.seed_major(h) if isinstance(m, (PackedLinear, PackedDropout)) else m(h)
            return h.transpose(0, 1).contiguous()
        B = x.shape[0]
        if self.chain is not None and (x.ndim == 3 or isinstance(self.chain[0], _SeedFlatten)):
            h = x.transpose(0, 1)  # (K, B, *shape): each seed's batch, seed-major
            for m in self.chain:
                h = m.seed_major(h) if isinstance(m, (PackedLinear, PackedDropout)) else m(h)
            return h.transpose(0, 1).contiguous()
        x = x.reshape(B, -1, *x.shape[3:])  # (B, K*C, H, W) or (B, K*F)
        if self.fast and x.ndim == 4:  # pooling and batch norm vectorise over channels
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).reshape(B, self.K, -1)

    def set_dropout_generators(self, generators: Sequence[torch.Generator]) -> None:
        for m in self.modules():
            if isinstance(m, PackedDropout):
                m.generators = list(generators)


_ELEMENTWISE = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.CELU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
)


class _SeedFlatten(nn.Module):
    """nn.Flatten(start_dim=1) of the packed layout, on seed-major (K, B, *shape)."""

    def forward(self, h: Tensor) -> Tensor:
        return h.flatten(2)


def _seed_major_chain(net: nn.Module) -> list[nn.Module] | None:
    """The packed modules of an MLP-shaped net, to run seed-major, or None.

    A Sequential (whose forward is Sequential's own) of an optional leading Flatten, packed
    Linear layers, dropout and elementwise activations computes each seed's values whatever
    the layout of the activations, so it can skip the packed layout's transposes between
    layers: every product
    gets the same operands in the same aligned layout, so the results are bit for bit the same
    (tests/train/test_pack.py)."""
    if (
        not isinstance(net, nn.Sequential)
        or type(net).forward is not nn.Sequential.forward  # a forward of its own: as written
        or not any(isinstance(m, PackedLinear) for m in net)
    ):
        return None
    chain: list[nn.Module] = []
    for i, m in enumerate(net):
        if type(m) is nn.Flatten and i == 0 and m.start_dim == 1 and m.end_dim == -1:
            chain.append(_SeedFlatten())
        elif isinstance(m, (PackedLinear, PackedDropout)) or type(m) in _ELEMENTWISE:
            chain.append(m)
        else:
            return None
    return chain


def clip_grad_norm_per_seed(pack: Pack | StackedPack, max_norm: float) -> Tensor:
    """Clip each seed's gradient to L2 norm `max_norm` over that seed's slice only; returns the
    (K,) norms before clipping."""
    grads = [p.grad for p in pack.parameters() if p.grad is not None]
    squares = torch.cat([(g * g).reshape(pack.K, -1) for g in grads], 1)  # (K, n): seed k's
    norms = row_sums(squares).sqrt()  # (K,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.ndim - 1))))
    return norms


def row_sums(x: Tensor) -> Tensor:
    """(K, n) -> (K,): each row summed in one order fixed by n alone, a pairwise tree of
    elementwise adds (each add is one IEEE rounding, the same in a vector lane or scalar).

    A library reduction does not promise that: torch.sum over rows, and a bmm of a row with
    itself, split and vectorise the sum by K, the thread count and the ISA (MKL's batched dot
    gave seed 0 another norm alone than in a pack of 2, single-threaded). Here the result is
    the same for every K, thread count and CPU, at about two elementwise passes over x.
    """
    while x.shape[1] > 1:
        if x.shape[1] % 2:
            x = F.pad(x, (0, 1))  # + 0.0 is exact
        half = x.shape[1] // 2
        x = x[:, :half] + x[:, half:]
    return x[:, 0] if x.shape[1] else x.new_zeros(x.shape[0])
