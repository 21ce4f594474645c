from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seedhp.errors import ConfigError
from seedhp.train.data import augment, load_digits, load_synthetic, load_torchvision, split
from tests.datafiles import write_cifar10, write_mnist


def test_digits_has_a_fixed_test_part_and_a_seeded_validation_carve() -> None:
    src = load_digits()
    assert (len(src.train_y), len(src.test_y)) == (1438, 359)
    assert src.train_x.shape[1:] == (1, 8, 8) and src.num_classes == 10
    assert torch.equal(load_digits().test_x, src.test_x)
    a, b, a2 = split(src, 144, 1), split(src, 144, 2), split(src, 144, 1)
    assert (len(a.train), len(a.val), len(a.test)) == (1294, 144, 359)
    assert torch.equal(a.val.x, a2.val.x) and not torch.equal(a.val.x, b.val.x)
    assert torch.equal(a.test.x, b.test.x)
    # the parts are disjoint and together are the official train part
    x = a.normalize(src.train_x).flatten(1)
    joined = a.normalize(torch.cat([a.train.x, a.val.x])).flatten(1)
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, joined.tolist()))


def test_draw_test_draws_the_whole_partition_by_the_split_seed() -> None:
    src = load_digits()
    a, b, a2 = split(src, 144, 1, True), split(src, 144, 2, True), split(src, 144, 1, True)
    assert (len(a.train), len(a.val), len(a.test)) == (1294, 144, 359)  # the same sizes
    assert torch.equal(a.test.x, a2.test.x) and not torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.test.x, src.test_x)  # not the fixed held-out part

    def rows(*parts: torch.Tensor) -> list[tuple[float, ...]]:
        return sorted(map(tuple, torch.cat(parts).flatten(1).tolist()))

    # train, validation and test are disjoint and together are the whole data set
    assert rows(a.train.x, a.val.x, a.test.x) == rows(src.train_x, src.test_x)
    # without it, the partition is what it always was
    assert torch.equal(split(src, 144, 1, False).val.x, split(src, 144, 1).val.x)


def test_an_official_test_set_is_never_redrawn(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=30, n_test=10, name="FashionMNIST")
    src = load_torchvision("FashionMNIST", str(tmp_path), verify=False)
    assert src.official_test and not load_digits().official_test
    with pytest.raises(ConfigError) as err:
        split(src, 5, 0, draw_test=True)
    assert str(err.value).startswith("data.draw_test=True: ") and "official" in str(err.value)


def test_synthetic_any_shape_same_data_for_every_call() -> None:
    for shape in ([20], [3, 32, 32], [1, 5, 7]):
        src = load_synthetic(shape, num_classes=4, n_train=200, n_test=50)
        assert src.train_x.shape == (200, *shape) and src.test_x.shape == (50, *shape)
        assert set(src.train_y.tolist()) <= {0, 1, 2, 3} and len(set(src.train_y.tolist())) > 1
        assert torch.equal(src.train_x, load_synthetic(shape, 4, 200, 50).train_x)
    with pytest.raises(ConfigError, match=r"data\.source\.shape"):
        load_synthetic([0, 3])


def test_cifar10_loads_from_files_in_its_own_format(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, per_batch=6, n_test=8)
    src = load_torchvision("CIFAR10", str(tmp_path), verify=False)
    assert src.train_x.shape == (30, 3, 32, 32) and src.train_x.dtype == torch.uint8
    assert np.array_equal(src.train_x.numpy(), written["train_x"])
    assert np.array_equal(src.test_y.numpy(), written["test_y"]) and src.num_classes == 10
    # torchvision's md5 check refuses these files: one line says where and how
    with pytest.raises(ConfigError) as err:
        load_torchvision("CIFAR10", str(tmp_path), verify=True)
    assert "cifar-10-batches-py" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_mnist_family_loads_from_idx_files(tmp_path: Path, name: str) -> None:
    written = write_mnist(tmp_path, n_train=30, n_test=10, name=name)
    src = load_torchvision(name, str(tmp_path), verify=False)
    assert src.train_x.shape == (30, 1, 28, 28)
    assert np.array_equal(src.train_x[:, 0].numpy(), written["train_x"])
    assert np.array_equal(src.test_y.numpy(), written["test_y"])
    # torchvision only checks that the files exist; seedhp checks their md5 as well
    with pytest.raises(ConfigError) as err:
        load_torchvision(name, str(tmp_path))
    msg = str(err.value)
    assert "differ from the official ones" in msg and "make data" in msg and "\n" not in msg


def test_missing_data_set_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_torchvision("MNIST", str(tmp_path / "nowhere"), download=False)
    msg = str(err.value)
    assert msg.startswith("data.root=") and "MNIST/raw" in msg and "data.download=true" in msg
    assert "\n" not in msg


def test_augmentation_of_a_seed_does_not_depend_on_its_pack_mates() -> None:
    x = torch.randn(16, 3, 3, 8, 8)  # (B, K, C, H, W)
    gens = [torch.Generator().manual_seed(s) for s in (11, 12, 13)]
    packed = augment(x, "crop_flip", 2, gens)
    alone = augment(x[:, 1:2].clone(), "crop_flip", 2, [torch.Generator().manual_seed(12)])
    assert torch.equal(packed[:, 1:2], alone)
    assert not torch.equal(packed, x)
    assert torch.equal(augment(x, "none", 0, gens), x)
    # a crop keeps the image's values, only moved: each output row is a padded input row
    flipped_only = augment(x, "flip", 0, [torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    assert torch.equal(flipped_only.sort(-1).values, x.sort(-1).values)


def test_splits_standardised_once_give_each_batch_the_values_normalize_gives_it() -> None:
    from seedhp.train.data import split_many

    for data in (split(load_digits(), 0.2, 0), split_many(load_digits(), 0.2, [0, 3])):
        ready = data.standardise()
        assert ready.standardised and ready.standardise() is ready
        idx = torch.randint(0, len(data.train.y), (64, 2))
        assert torch.equal(ready.normalize(ready.train.x[idx]), data.normalize(data.train.x[idx]))
        assert torch.equal(ready.test.x, data.normalize(data.test.x))
        assert (ready.train.x is ready.val.x) == (data.train.x is data.val.x)  # a pool: once
        assert data.standardise(max_bytes=1) is data  # too large: per batch, as before
