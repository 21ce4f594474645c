"""Small data sets written in the real on-disk formats torchvision reads."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def write_idx(path: Path, array: np.ndarray) -> None:
    """The IDX format of MNIST's files: magic (0, 0, dtype=0x08 ubyte, ndim), big-endian dims."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: Path, n_train: int = 60, n_test: int = 20, name: str = "MNIST", seed: int = 0
) -> dict[str, np.ndarray]:
    """<root>/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, uncompressed."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": np.arange(n_train) % 10,
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": np.arange(n_test) % 10,
    }
    raw = root / name / "raw"
    write_idx(raw / "train-images-idx3-ubyte", arrays["train_x"])
    write_idx(raw / "train-labels-idx1-ubyte", arrays["train_y"])
    write_idx(raw / "t10k-images-idx3-ubyte", arrays["test_x"])
    write_idx(raw / "t10k-labels-idx1-ubyte", arrays["test_y"])
    return arrays


def write_cifar10(
    root: Path, per_batch: int = 12, n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}: pickled dicts with
    'data' (N, 3072) uint8 rows (R, G, B planes) and 'labels', as the real archive has them."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for i, name in enumerate(CIFAR_BATCHES):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [(i * per_batch + j) % 10 for j in range(per_batch)]
        _pickle(folder / name, {"batch_label": name, "data": x, "labels": y})
        train_x.append(x)
        train_y += y
    test_x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = [j % 10 for j in range(n_test)]
    _pickle(folder / "test_batch", {"batch_label": "test", "data": test_x, "labels": test_y})
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    _pickle(folder / "batches.meta", {"label_names": names, "num_vis": 3072})
    return {
        "train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32),
        "train_y": np.array(train_y),
        "test_x": test_x.reshape(-1, 3, 32, 32),
        "test_y": np.array(test_y),
    }


def _pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
