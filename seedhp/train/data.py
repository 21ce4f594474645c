"""Data: a data set's official train/test parts, the validation carve, and per-seed batches.

Everything is a tensor held on the training device: no DataLoader on the hot path. Images are
(N, C, H, W), flat examples (N, F); raw values stay in their stored dtype (uint8 for the image
data sets) and are normalised batch by batch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seedhp.errors import ConfigError

AUGMENTS = ("none", "flip", "crop", "crop_flip")
STANDARDISE_MAX_BYTES = 2**30  # Splits.standardise: float copies of the parts up to 1 GiB


@dataclass(frozen=True)
class Source:
    """A data set's official parts. x: (N, *shape), raw values; y: (N,) int64 labels."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    scale: float  # raw / scale lies in [0, 1] (or is already standardised for synthetic)
    mean: tuple[float, ...]  # per channel, after scaling
    std: tuple[float, ...]
    # the test part is the data set's official one (MNIST's t10k files): never redrawn
    official_test: bool = False


@dataclass(frozen=True)
class Part:
    """Examples x (N, *shape) and labels y (N,), every seed's; or, with `rows` (n, K), a pool
    x, y of which seed k's part is x[rows[:, k]] (seeds of one pack on different splits)."""

    x: Tensor
    y: Tensor
    rows: Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0] if self.rows is None else self.rows.shape[0])

    def pool_rows(self, idx: Tensor) -> Tensor:
        """Positions (n, K) in each seed's own part -> rows of x and y (the same without rows)."""
        return idx if self.rows is None else self.rows.gather(0, idx)

    def labels(self, k: int) -> Tensor:
        """Seed k's labels, in its part's order."""
        return self.y if self.rows is None else self.y[self.rows[:, k]]

    def alone(self, k: int) -> Part:
        """Seed k's part as a plain one (its examples copied out of the pool)."""
        if self.rows is None:
            return self
        return Part(self.x[self.rows[:, k]], self.y[self.rows[:, k]])


@dataclass(frozen=True)
class Splits:
    """Train, validation (carved from the official train part) and the official test part."""

    name: str
    train: Part
    val: Part
    test: Part
    num_classes: int
    scale: float
    mean: Tensor  # (C, 1, 1) for images; () or (F,) for flat examples
    std: Tensor
    standardised: bool = False  # every part's x is normalize()'s output already

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one example: (C, H, W) or (F,)."""
        return tuple(self.train.x.shape[1:])

    def to(self, device: torch.device) -> Splits:
        """These splits on `device`: themselves where they are there already."""
        parts = (self.train, self.val, self.test)
        tensors = [
            self.mean,
            self.std,
            *(t for p in parts for t in (p.x, p.y, p.rows) if t is not None),
        ]
        if all(t.device == device for t in tensors):
            return self

        def move(p: Part) -> Part:
            return Part(
                p.x.to(device), p.y.to(device), None if p.rows is None else p.rows.to(device)
            )

        return replace(
            self,
            train=move(self.train),
            val=move(self.val),
            test=move(self.test),
            mean=self.mean.to(device),
            std=self.std.to(device),
        )

    def alone(self, k: int) -> Splits:
        """Seed k's splits as plain parts (what it trains on alone)."""
        return replace(
            self, train=self.train.alone(k), val=self.val.alone(k), test=self.test.alone(k)
        )

    def normalize(self, x: Tensor) -> Tensor:
        """Raw examples (N, *shape) -> float32 standardised per channel (as they are, when the
        splits are standardised already)."""
        if self.standardised:
            return x
        return (x.float() / self.scale - self.mean) / self.std

    def standardise(self, max_bytes: int = STANDARDISE_MAX_BYTES) -> Splits:
        """These splits with every part's examples standardised once, so that batches are
        gathered ready: each value is the one normalize() gives it in a batch (elementwise, the
        same operations). Themselves when already standardised, or when the float copies would
        take more than `max_bytes` (then each batch is standardised as it is gathered)."""
        if self.standardised:
            return self
        pools = {id(p.x): p.x for p in (self.train, self.val, self.test)}  # a pool is shared
        if sum(x.numel() * 4 for x in pools.values()) > max_bytes:
            return self
        done = {i: (x.float() / self.scale - self.mean) / self.std for i, x in pools.items()}

        def part(p: Part) -> Part:
            return Part(done[id(p.x)], p.y, p.rows)

        return replace(
            self,
            train=part(self.train),
            val=part(self.val),
            test=part(self.test),
            standardised=True,
        )


# ----------------------------------------------------------------------------------------------
# Sources


def load_digits() -> Source:
    """scikit-learn's bundled 8x8 digits (1,797 images); the test part is a fixed, stratified
    20 % held out with a constant RNG, so every run and every seed tests on the same images."""
    images, target = _digits_arrays()
    x = torch.from_numpy(images).reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8), values 0..16
    y = torch.from_numpy(target)
    rng = np.random.default_rng(0)  # constant: the held-out part is part of the data set
    test_idx = np.concatenate(
        [
            rng.permutation(np.flatnonzero(target == c))[: round(0.2 * (target == c).sum())]
            for c in range(10)
        ]
    )
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_idx] = True
    train, test = torch.from_numpy(~is_test), torch.from_numpy(is_test)
    return Source(
        "digits",
        x[train],
        y[train],
        x[test],
        y[test],
        num_classes=10,
        scale=16.0,
        mean=(0.3055,),
        std=(0.3761,),
    )


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The pixels (1797, 64) float32 and labels (1797,) int64 of scikit-learn's digits.csv.gz,
    read as sklearn.datasets.load_digits reads it but without importing scikit-learn (0.8 s
    of every process's start-up)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float32)
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


# name -> (torchvision class, files to expect, per-channel mean, std)
# md5 of the official uncompressed files (torchvision's MNIST classes only check they exist)
RAW_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


def md5_mismatches(raw: Path, name: str) -> list[str]:
    """The files of `name` under `raw` that are missing or differ from the official ones."""
    out = []
    for file, md5 in RAW_MD5[name].items():
        path = raw / file
        if not path.is_file() or hashlib.md5(path.read_bytes()).hexdigest() != md5:
            out.append(file if path.is_file() else f"{file} (missing)")
    return out


_TORCHVISION = {
    "MNIST": ("MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", (0.1307,), (0.3081,)),
    "FashionMNIST": (
        "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
        (0.2860,),
        (0.3530,),
    ),
    "CIFAR10": (
        "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
}


def load_torchvision(name: str, root: str, download: bool = False, verify: bool = True) -> Source:
    """MNIST, FashionMNIST or CIFAR10 through torchvision's own dataset classes.

    `verify=True` checks every file's md5 against the official one: torchvision does for
    CIFAR-10, seedhp for MNIST and Fashion-MNIST (whose torchvision classes only check that the
    files exist). `verify=False` reads a copy whose checksums differ (such as the small files the
    tests write in the same on-disk format), still through torchvision's own class.
    """
    import torchvision.datasets as tvd

    if name not in _TORCHVISION:
        raise ConfigError("data.source.name", name, f"allowed: {', '.join(_TORCHVISION)}")
    expected, mean, std = _TORCHVISION[name]
    cls = getattr(tvd, name)
    if name == "CIFAR10" and not verify:
        cls = type(
            "UnverifiedCIFAR10",
            (cls,),
            {"_check_integrity": _files_exist, "meta": {**cls.meta, "md5": None}},
        )
    root_path = Path(root).expanduser().resolve()
    raw = root_path / name / "raw"
    if name in RAW_MD5 and verify and raw.is_dir() and (wrong := md5_mismatches(raw, name)):
        raise ConfigError(
            "data.root",
            root_path,
            f"{name}'s files differ from the official ones ({', '.join(wrong)}): run make "
            "data, or data.source.verify=false to read them anyway",
        )
    try:
        train, test = (cls(str(root_path), train=t, download=download) for t in (True, False))
    except RuntimeError:  # torchvision: "Dataset not found or corrupted" / failed download
        how = "the download failed" if download else "data.download=false"
        raise ConfigError(
            "data.root",
            root_path,
            f"{name} not found or corrupted (expected {root_path}/{expected}); {how}: set "
            "data.download=true on a machine with internet, or copy the files there",
        ) from None
    except OSError as err:  # URLError and friends when download=true without a network
        raise ConfigError(
            "data.download",
            download,
            f"downloading {name} to {root_path} failed ({err}); copy the files to "
            f"{root_path}/{expected} and set data.download=false",
        ) from None

    def arrays(ds: object) -> tuple[Tensor, Tensor]:
        data, targets = ds.data, ds.targets  # type: ignore[attr-defined]
        x = torch.as_tensor(np.asarray(data))
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # -> (N, C, H, W) uint8
        return x.contiguous(), torch.as_tensor(np.asarray(targets), dtype=torch.int64)

    (trx, try_), (tex, tey) = arrays(train), arrays(test)
    return Source(
        name,
        trx,
        try_,
        tex,
        tey,
        num_classes=len(train.classes),
        scale=255.0,
        mean=mean,
        std=std,
        official_test=True,
    )


def _files_exist(self: object) -> bool:
    root = Path(self.root) / self.base_folder  # type: ignore[attr-defined]
    names = [f for f, _ in self.train_list + self.test_list]  # type: ignore[attr-defined]
    return all((root / f).is_file() for f in names)


def load_synthetic(
    shape: Sequence[int],
    num_classes: int = 10,
    n_train: int = 2000,
    n_test: int = 500,
    rule_seed: int = 0,
    label_noise: float = 0.0,
) -> Source:
    """Examples of any shape with a planted, learnable rule.

    x is Gaussian noise quantised to uint8 (like a stored image); the label is the argmax of a
    fixed random linear map of x average-pooled to at most 4x4 per channel, so both an MLP and a
    convnet can learn it. The data do not depend on the run's seed (only on `rule_seed`), and a
    fraction `label_noise` of labels is replaced by uniform ones.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise ConfigError(
            "data.source.shape", list(shape), "a list of positive ints, e.g. [3,32,32]"
        )
    if num_classes < 2:
        raise ConfigError("data.source.num_classes", num_classes, "an int >= 2")
    g = torch.Generator().manual_seed(rule_seed)
    n = n_train + n_test
    raw = (torch.randn((n, *shape), generator=g) * 40 + 128).round().clamp(0, 255).to(torch.uint8)
    z = (raw.float() - 128) / 40
    feats = (
        F.adaptive_avg_pool2d(z, (min(shape[1], 4), min(shape[2], 4))) if len(shape) == 3 else z
    )
    feats = feats.flatten(1)
    w = torch.randn((feats.shape[1], num_classes), generator=g)
    y = (feats @ w).argmax(1)
    flip = torch.rand(n, generator=g) < label_noise
    y = torch.where(flip, torch.randint(num_classes, (n,), generator=g), y)
    channels = shape[0] if len(shape) == 3 else 1
    return Source(
        f"synthetic{list(shape)}",
        raw[:n_train],
        y[:n_train],
        raw[n_train:],
        y[n_train:],
        num_classes=num_classes,
        scale=255.0,
        mean=(128 / 255,) * channels,
        std=(40 / 255,) * channels,
    )


# ----------------------------------------------------------------------------------------------
# Validation carve and batches


def split(
    source: Source, val_size: int | float, split_seed: int, draw_test: bool = False
) -> Splits:
    """Carve a validation part from the official train part, chosen by the `split` seed
    stream: `val_size` examples (an int), or that fraction of them rounded (a float in (0, 1),
    scikit-learn's convention); the test part is the data set's, untouched.

    With `draw_test` the test part is drawn too: train and test pooled, a test part of the
    same size drawn by the split stream, the validation part from the rest, so two split seeds
    give two independent draws of the whole partition. Refused (ConfigError) for an official
    test set (MNIST's, Fashion-MNIST's, CIFAR-10's), which results are compared on."""
    x, y, (train, val, test) = _carve(source, val_size, split_seed, draw_test)
    official = Part(source.test_x, source.test_y)
    train_part, val_part = Part(x[train], y[train]), Part(x[val], y[val])
    return _splits_of(
        source, train_part, val_part, official if test is None else Part(x[test], y[test]), x.ndim
    )


def split_many(
    source: Source, val_size: int | float, split_seeds: Sequence[int], draw_test: bool = False
) -> Splits:
    """One pack's data when its seeds validate on different splits: seed k's parts are exactly
    `split(source, val_size, split_seeds[k], draw_test)`'s, held as rows of one pool (the train
    part, or train and test pooled with `draw_test`), so no example is copied per seed."""
    carved = [_carve(source, val_size, s, draw_test) for s in split_seeds]
    x, y = carved[0][0], carved[0][1]

    def part(i: int) -> Part:
        index = [c[2][i] for c in carved]
        if index[0] is None:  # the official test part, every seed's
            return Part(source.test_x, source.test_y)
        return Part(x, y, torch.stack(index, 1))  # type: ignore[arg-type]

    return _splits_of(source, part(0), part(1), part(2), x.ndim)


def _carve(
    source: Source, val_size: int | float, split_seed: int, draw_test: bool
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor | None]]:
    """The pool (the train part; train and test with `draw_test`) and the sorted pool rows of
    the train, validation and test parts (test None: the official test part)."""
    if draw_test and source.official_test:
        raise ConfigError(
            "data.draw_test",
            True,
            f"{source.name}'s test part is its official one, which results are compared on: "
            "false (draw the validation part only)",
        )
    generator = torch.Generator().manual_seed(split_seed)
    pool_x, pool_y = source.train_x, source.train_y
    rest: Tensor | None = None
    test_idx: Tensor | None = None
    if draw_test:
        pool_x = torch.cat([source.train_x, source.test_x])
        pool_y = torch.cat([source.train_y, source.test_y])
        perm = torch.randperm(len(pool_y), generator=generator)
        n_test = len(source.test_y)
        test_idx, rest = perm[:n_test].sort().values, perm[n_test:].sort().values
    n = len(pool_y) if rest is None else len(rest)
    n_val = val_count(val_size, n)
    if not 1 <= n_val < n:
        raise ConfigError(
            "data.val_size",
            val_size,
            f"a number of examples from 1 to {n - 1}, or a fraction in (0, 1), of the {n} in "
            f"{source.name}'s train part",
        )
    perm = torch.randperm(n, generator=generator)
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    if rest is not None:  # positions in the rest -> rows of the pool (rest is sorted)
        val_idx, train_idx = rest[val_idx], rest[train_idx]
    return pool_x, pool_y, (train_idx, val_idx, test_idx)


def _splits_of(source: Source, train: Part, val: Part, test: Part, ndim: int) -> Splits:
    image = ndim == 4
    flat_scalar = not image and len(source.mean) == 1  # one mean for all features, or one each
    stat_shape = (-1, 1, 1) if image else (() if flat_scalar else (-1,))
    mean = torch.tensor(source.mean[0] if flat_scalar else source.mean).reshape(stat_shape)
    std = torch.tensor(source.std[0] if flat_scalar else source.std).reshape(stat_shape)
    return Splits(
        name=source.name,
        train=train,
        val=val,
        test=test,
        num_classes=source.num_classes,
        scale=source.scale,
        mean=mean,
        std=std,
    )


def val_count(val_size: int | float, n: int) -> int:
    """Validation examples out of n: an int is a count, a float in (0, 1) a fraction."""
    if isinstance(val_size, float) and 0.0 < val_size < 1.0:
        return max(1, round(val_size * n))
    return val_size if isinstance(val_size, int) and not isinstance(val_size, bool) else -1


def from_parts(train: object, test: object, name: str) -> Source:
    """A user's data set as a Source. Each part is a map-style torch Dataset of (x, y) pairs, or
    a pair (x, y) of arrays or tensors; an example x is (C, H, W), (H, W) (one channel) or (F,),
    a label y an integer class. Raw uint8 values are scaled by 255; normalisation uses the
    train part's mean and std per channel (images) or per feature (flat examples). Bad shapes
    are ConfigErrors naming the loader."""
    trx, trn_y = _as_tensors(train, "train", name)
    tex, tey = _as_tensors(test, "test", name)
    if trx.shape[1:] != tex.shape[1:]:
        raise ConfigError(
            "data.source._target_",
            name,
            f"train examples are {tuple(trx.shape[1:])} but test examples are "
            f"{tuple(tex.shape[1:])}: both parts must have one shape",
        )
    if len(trn_y) < 2 or len(tey) < 1:
        raise ConfigError(
            "data.source._target_", name, f"gave {len(trn_y)} train and {len(tey)} test examples"
        )
    num_classes = int(trn_y.max()) + 1
    if int(trn_y.min()) < 0 or int(tey.min()) < 0 or int(tey.max()) >= num_classes:
        raise ConfigError(
            "data.source._target_",
            name,
            f"labels must be classes 0..{num_classes - 1} (from the train part); got train "
            f"{int(trn_y.min())}..{int(trn_y.max())}, test {int(tey.min())}..{int(tey.max())}",
        )
    scale = 255.0 if trx.dtype == torch.uint8 else 1.0
    values = trx.double() / scale
    if values.ndim == 4:  # (N, C, H, W): per channel
        mean = values.mean((0, 2, 3)).tolist()
        std = values.std((0, 2, 3)).clamp_min(1e-8).tolist()
    else:  # (N, F): per feature (tabular features differ in scale)
        mean = values.mean(0).tolist()
        std = values.std(0).clamp_min(1e-8).tolist()
    if not trx.is_floating_point() and trx.dtype != torch.uint8:
        trx, tex = trx.float(), tex.float()
    return Source(name, trx, trn_y, tex, tey, num_classes, scale, tuple(mean), tuple(std))


def _as_tensors(part: object, which: str, name: str) -> tuple[Tensor, Tensor]:
    """(x, y) of one part: x (N, C, H, W) or (N, F), y (N,) int64."""
    if isinstance(part, torch.utils.data.Dataset) and hasattr(part, "__len__"):
        pairs = [part[i] for i in range(len(part))]
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs[:1]):
            raise ConfigError(
                "data.source._target_",
                name,
                f"its {which} Dataset gives {type(pairs[0]).__name__} items; expected (x, y)",
            )
        xs = [torch.as_tensor(np.asarray(x)) for x, _ in pairs]
        if not xs or any(x.shape != xs[0].shape for x in xs):
            raise ConfigError(
                "data.source._target_", name, f"its {which} examples differ in shape"
            )
        x = torch.stack(xs)
        y = torch.as_tensor(np.asarray([int(np.asarray(t)) for _, t in pairs]))
    elif isinstance(part, (tuple, list)) and len(part) == 2:
        x, y = (torch.as_tensor(np.asarray(a)) for a in part)
    else:
        raise ConfigError(
            "data.source._target_",
            name,
            f"its {which} part is a {type(part).__name__}; expected a map-style Dataset of "
            "(x, y) or a pair (x, y) of arrays",
        )
    if x.ndim == 3:
        x = x.unsqueeze(1)  # (N, H, W): one channel
    if x.ndim not in (2, 4):
        raise ConfigError(
            "data.source._target_",
            name,
            f"its {which} x has shape {tuple(x.shape)}: examples must be (C, H, W), (H, W) or "
            "(F,), stacked along a first axis",
        )
    if y.ndim != 1 or len(y) != len(x) or y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError(
            "data.source._target_",
            name,
            f"its {which} y has shape {tuple(y.shape)} and dtype {y.dtype}: expected "
            f"({len(x)},) integer class labels",
        )
    return x.contiguous(), y.to(torch.int64)


def augment(x: Tensor, kind: str, pad: int, generators: Sequence[torch.Generator]) -> Tensor:
    """Augment a packed batch x: (B, K, C, H, W), seed k's images drawn with generators[k].

    Every seed draws its flips (B,) and crop offsets (B, 2) from its own stream, in that order,
    so what seed k sees does not depend on K or on its pack-mates.
    """
    if kind == "none":
        return x
    B = x.shape[0]
    draws = [torch.rand(B, 3, generator=g, device=g.device) for g in generators]
    u = torch.stack(draws, 1).to(x.device).flatten(0, 1)  # (B*K, 3): flip, dy, dx in [0, 1)
    out = x.flatten(0, 1)
    if "flip" in kind:
        out = torch.where((u[:, 0] < 0.5)[:, None, None, None], out.flip(-1), out)
    if "crop" in kind and pad > 0:
        out = _translate(
            out, pad, (u[:, 1] * (2 * pad + 1)).long(), (u[:, 2] * (2 * pad + 1)).long()
        )
    return out.view_as(x)


def _translate(x: Tensor, pad: int, dy: Tensor, dx: Tensor) -> Tensor:
    """Random crop after reflect padding: x (N, C, H, W), offsets dy, dx (N,) in [0, 2*pad]."""
    N, _, H, W = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = dy[:, None] + torch.arange(H, device=x.device)  # (N, H)
    cols = dx[:, None] + torch.arange(W, device=x.device)  # (N, W)
    n = torch.arange(N, device=x.device)[:, None, None]
    return padded[n, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (N, C, H, W)


def check_augment(kind: str, shape: tuple[int, ...], pad: int) -> None:
    if kind not in AUGMENTS:
        raise ConfigError("data.augment", kind, f"allowed: {', '.join(AUGMENTS)}")
    if kind != "none" and len(shape) != 3:
        raise ConfigError("data.augment", kind, f"needs images (C, H, W); examples are {shape}")
    if "crop" in kind and (pad < 0 or pad >= min(shape[1:])):
        raise ConfigError("data.crop_padding", pad, f"an int in [0, {min(shape[1:]) - 1}]")


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Full batches per epoch; the remainder differs per epoch (fresh order), so none is lost
    for good, and no step sees a batch of one (batch norm cannot train on it)."""
    return max(1, math.floor(n_train / batch_size))
