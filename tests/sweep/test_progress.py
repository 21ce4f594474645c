"""A sweep's progress display: a bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from seedhp.sweep.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_say_seeds_done_pack_epoch_alive_rate_and_eta() -> None:
    out = io.StringIO()
    p = Progress(64, out)
    p.epoch(1, 3, 32, 32)
    p.finished(32)
    p.epoch(2, 3, 31, 32)
    first, second = out.getvalue().splitlines()
    assert first == "seedhp: 0/64 seeds, pack of 32: epoch 1/3, 32 alive, 0.0 seeds/s, ETA ?"
    assert second.startswith("seedhp: 32/64 seeds, pack of 32: epoch 2/3, 31 alive, ")
    assert "ETA ?" not in second and "seeds/s" in second


def test_on_a_terminal_a_bar_and_no_lines() -> None:
    out = Terminal()
    p = Progress(10, out)
    p.epoch(1, 2, 5, 5)
    p.finished(5)
    assert p.bar is not None and p.bar.n == 5
    p.close()
    text = out.getvalue()
    assert "seedhp: " not in text and "/10 [" in text and "pack of 5: epoch 1/2, 5 alive" in text
