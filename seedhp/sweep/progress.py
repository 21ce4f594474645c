"""Live progress of a sweep's seed-runs: a tqdm bar where stderr is a terminal (seeds done of
the total, the current pack's epoch and the seeds alive in it, throughput, ETA), and one plain
line per pack epoch where it is not (CI, SLURM logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.bar = (
            tqdm(total=total, unit="seed", file=self.stream, dynamic_ncols=True, leave=False)
            if self.stream.isatty()
            else None
        )

    def epoch(self, epoch: int, epochs: int, alive: int, size: int) -> None:
        """The pack of `size` seeds finished `epoch` of `epochs`; `alive` still train."""
        where = f"pack of {size}: epoch {epoch}/{epochs}, {alive} alive"
        if self.bar is not None:
            self.bar.set_postfix_str(where, refresh=True)
            return
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if self.done and elapsed > 0 else 0.0
        eta = _duration((self.total - self.done) / rate) if rate else "?"
        self.stream.write(
            f"seedhp: {self.done}/{self.total} seeds, {where}, {rate:.1f} seeds/s, ETA {eta}\n"
        )
        self.stream.flush()

    def finished(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
