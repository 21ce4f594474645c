"""What seedhp takes from a store: only named code runs, only seedhp's ids become paths."""

from __future__ import annotations

import pytest

from seedhp.errors import ConfigError
from seedhp.job import trust


@pytest.mark.parametrize(
    ("target", "allow", "ok"),
    [
        ("seedhp.train.models.CNN", [], True),
        ("seedhp.train.data.load_digits", [], True),
        ("torch.optim.SGD", [], True),
        ("torch.nn.Linear", [], True),
        ("torch.load", [], False),  # unpickles
        ("torch.hub.load", [], False),  # runs a repository's hubconf.py
        ("os.system", [], False),
        ("seedhp.fetch.main", [], False),
        ("mypkg.Net", ["mypkg"], True),
        ("mypkg.sub.Net", ["mypkg"], True),
        ("mypkgevil.Net", ["mypkg"], False),  # whole dotted parts only
        ("mypkg.Net", ["mypkg.Net"], True),
        ("torch.optimizer_evil", [], False),
    ],
)
def test_allowed_targets(target: str, allow: list[str], ok: bool) -> None:
    assert trust.allowed(target, allow) is ok


def test_the_names_a_command_line_holds() -> None:
    named = trust.named_in(["model._target_=mypkg.nets.Net", "seed=range(0,4)", "lr=0.1"])
    assert "mypkg.nets.Net" in named and trust.allowed("mypkg.nets.Net", named)
    assert not trust.allowed("os.system", named)


GOOD = {
    "model": {"_target_": "seedhp.train.models.CNN", "_partial_": True, "widths": [8]},
    "optimizer": {"_target_": "torch.optim.SGD", "lr": 0.1},
    "data": {"source": {"_target_": "seedhp.train.data.load_digits"}},
    "tracking": {"uri": "sqlite:///x.db"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"_target_": "os.system", "command": "touch x"}}, "model._target_=os.system"),
        (
            {"data": {"source": {"_target_": "builtins.exec", "x": [{"_target_": "a.b"}]}}},
            "data.source._target_=builtins.exec",
        ),
        ({"extra": [{"_target_": "subprocess.run"}]}, "extra[0]._target_=subprocess.run"),
        ({"hydra": {"callbacks": {}}}, "hydra=...: in run r's config.yaml"),
        ({"defaults": ["_self_"]}, "defaults=..."),
        ({"tracking": {"uri": "${oc.env:AWS_SECRET_ACCESS_KEY}"}}, "tracking.uri=${oc.env"),
    ],
)
def test_a_stored_config_that_would_run_unnamed_code_is_refused(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        trust.check_config({**GOOD, **change}, "run r's config.yaml")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_stored_config_of_named_code_runs() -> None:
    trust.check_config(GOOD, "run r's config.yaml")
    mine = {**GOOD, "model": {"_target_": "mypkg.Net"}}
    with pytest.raises(ConfigError, match=r"--allow-target mypkg\.Net"):
        trust.check_config(mine, "run r's config.yaml")
    trust.check_config(mine, "run r's config.yaml", ["mypkg"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=custom", "model._target_=os.system"], "model._target_=os.system"),
        (["+model._target_='os.system'"], "model._target_='os.system'"),
        (["hydra.job.env_set.LD_PRELOAD=/tmp/x.so"], "hydra.job.env_set.LD_PRELOAD="),
        (["hydra/launcher=evil"], "hydra/launcher=evil"),
        (["optimizer.lr=${oc.env:HOME}"], "optimizer.lr=${oc.env:HOME}"),
    ],
)
def test_stored_overrides_that_would_run_unnamed_code_are_refused(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        trust.check_overrides(overrides, "the tag")
    assert str(err.value).startswith(message)


def test_stored_overrides_of_named_code_run() -> None:
    trust.check_overrides(["model=cnn", "optimizer.lr=0.1", "seed=3"], "the tag")
    trust.check_overrides(["model=custom", "model._target_=mypkg.Net"], "the tag", ["mypkg.Net"])


@pytest.mark.parametrize("bad", ["../../../../x", "abc", "0123456789AB", "0123456789ab/", ""])
def test_a_config_id_that_is_not_seedhps_never_becomes_a_path(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a config id seedhp writes"):
        trust.stored_config_id(bad, "r1")
    assert trust.stored_config_id("0123456789ab", "r1") == "0123456789ab"


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "", "a" * 65, "x\n"])
def test_a_run_id_that_is_not_a_path_component_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="a run id is letters"):
        trust.safe_run_id(bad)
    assert (
        trust.safe_run_id("4f93371e4588aa4f93371e4588aa1234") == "4f93371e4588aa4f93371e4588aa1234"
    )
