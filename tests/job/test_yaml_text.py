from __future__ import annotations

import yaml

from seedhp.job.yaml_text import Entries, dump


def test_entries_kept_as_text_give_the_whole_documents_text() -> None:
    """Seeds of a pack share every value but the seed: their config.yaml, made from entries
    kept as text, is what dumping each whole config gives, and loads back to it."""
    shared = {
        "model": {"name": "mlp", "hidden": [128, 64], "extra": {}},
        "data": {"name": "dïgits", "root": "/a/" + "b" * 100, "none": None},
        "optimizer": {"lr": 0.1, "nesterov": True, "betas": [0.9, 0.999]},
        "empty": {},
        "listed": [{"a": 1}, {"b": [2, 3]}],
    }
    for allow_unicode in (False, True):
        texts = Entries(allow_unicode=allow_unicode)
        for seed in (0, 1, 123456789):
            config = {"seed": seed, **shared, "tracking": {"uri": f"sqlite:///x{seed}.db"}}
            text = texts.dump(config)
            assert text == dump(config, allow_unicode=allow_unicode)
            assert yaml.safe_load(text) == config
    assert Entries().dump({}) == "{}\n"
    same = {"a": [1, 2]}
    assert "&" not in dump({"x": same, "y": same})  # no anchors: each entry stands alone
