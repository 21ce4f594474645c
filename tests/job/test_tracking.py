from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from seedhp.errors import ConfigError
from seedhp.job.run import run
from seedhp.job.tracking import Tracker, check_reachable
from seedhp.job.urls import sqlite_file
from tests.conftest import all_runs, compose_config, mlflow_client


def test_a_seed_run_is_one_batched_mlflow_run(
    outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for name in ("log_batch", "log_metric", "log_param", "set_tag", "create_run", "log_text"):
        original = getattr(MlflowClient, name)

        def spy(self, *a, _name=name, _orig=original, **kw):  # type: ignore[no-untyped-def]
            # the heartbeat's stamp, every 30 s, lands in whichever test is running then
            if threading.current_thread().name != "heartbeat":
                calls[_name] += 1
            return _orig(self, *a, **kw)

        monkeypatch.setattr(MlflowClient, name, spy)
    cfg = compose_config(
        ["train.epochs=4", "seed=7", "tracking.save_predictions=true", "+tracking.tags.owner=me"],
        outputs,
    )
    value = run(cfg)
    assert calls["log_metric"] == calls["log_param"] == calls["set_tag"] == 0
    # one create, one batch (params, per-epoch and final metrics, status); the config and the
    # predictions written straight into the run's local artifact directory
    assert calls["create_run"] == 1 and calls["log_batch"] == 1 and calls["log_text"] == 0
    [r] = all_runs(outputs)
    listed = {a.path for a in mlflow_client(outputs).list_artifacts(r.info.run_id)}
    assert listed == {"config.yaml", "test_predictions.json"}
    path = mlflow_client(outputs).download_artifacts(r.info.run_id, "config.yaml", str(outputs))
    assert "seed: 7" in Path(path).read_text()

    [r] = all_runs(outputs)
    tags, params, metrics = r.data.tags, r.data.params, r.data.metrics
    assert (
        tags["seed"] == "7"
        and len(tags["config_id"]) == 12
        and tags["seedhp.status"] == "finished"
    )
    assert tags["owner"] == "me" and tags["seedhp.role"] == "run"
    assert (
        params["optimizer.lr"] == "0.05" and params["model._target_"] == "seedhp.train.models.CNN"
    )
    assert params["seed"] == "7" and params["seeds.split"] == "0"
    assert {f"seed_stream.{s}" for s in ("init", "data", "augment", "dropout", "split")} <= set(
        params
    )
    assert metrics["val_acc"] == value and "test_acc" in metrics and "train_seconds" in metrics
    history = mlflow_client(outputs).get_metric_history(r.info.run_id, "val_acc")
    assert [m.step for m in history] == [1, 2, 3, 4]  # per epoch (the final score is epoch 4's)
    artifacts = {a.path for a in mlflow_client(outputs).list_artifacts(r.info.run_id)}
    assert {"config.yaml", "test_predictions.json"} <= artifacts
    preds = json.loads(
        Path(
            mlflow_client(outputs).download_artifacts(
                r.info.run_id, "test_predictions.json", str(outputs)
            )
        ).read_text()
    )
    assert len(preds["predictions"]) == len(preds["labels"]) == 359
    assert set(preds["predictions"]) <= set(range(10)) and tags["seedhp.predictions"]
    assert params["split.n_test"] == "359" and params["split.n_val"] == "288"


def test_bad_tracking_uris_fail_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"tracking.uri=http://127.0.0.1:9: no MLflow"):
        check_reachable("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="sqlite:///"):
        check_reachable("sqlite:/relative.db")
    with pytest.raises(ConfigError, match="cannot use this MLflow store"):
        Tracker(f"mysql://nobody@127.0.0.1:9/{tmp_path.name}", "x")
    home = Path("~").expanduser()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"`~` is not expanded .*: sqlite:///{home}/s/m\.db$"):
        Tracker("sqlite:///~/s/m.db", "x")
    assert not (tmp_path / "~").exists()  # refused before any file is made


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:////abs/m.db", "/abs/m.db"),
        ("sqlite:///rel/m.db", "rel/m.db"),
        ("sqlite:///a%20b/m.db", "a b/m.db"),  # as SQLAlchemy, and so MLflow and Optuna, open it
        ("sqlite:///rel/m.db?timeout=5", "rel/m.db"),
        ("sqlite:///:memory:", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_an_sqlite_url_names_the_file_its_store_opens(url: str, file: str | None) -> None:
    assert sqlite_file(url) == (Path(file) if file else None)


def test_finishing_many_runs_at_once_writes_what_log_batch_and_set_terminated_write(
    tmp_path: Path,
) -> None:
    """A pack's runs end in one transaction; the store holds the same rows as run by run:
    params, every metric step (NaN and inf too), the latest metrics, tags, status, end."""
    from seedhp.job.tracking import Finish, Start, metric

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "seedhp")

    def pair() -> list[str]:
        ids = tracker.start_many([Start(f"r{i}", {"seedhp.status": "running"}) for i in (0, 1)])
        tracker.log(ids[0], metrics=[metric("val_acc", 0.5, 1, 1000)])  # a mid-run flush
        return ids

    def items(ids: list[str]) -> list[Finish]:
        return [
            Finish(
                run_id,
                status,
                [
                    metric("val_acc", 0.7, 2, 2000),
                    metric("val_acc", 0.6, 3, 3000),
                    metric("loss", float("nan"), 3, 3000),
                    metric("gap", float("inf"), 3, 3000),
                ],
                {"optimizer.lr": "0.1", "seed": str(i)},
                {"seedhp.status": "finished", "new": "tag"},
            )
            for i, (run_id, status) in enumerate(zip(ids, ("FINISHED", "FAILED"), strict=True))
        ]

    bulk, one_by_one = pair(), pair()
    tracker.finish_many(items(bulk))
    for f in items(one_by_one):
        tracker.finish_many([f])  # one item: MLflow's own log_batch and set_terminated

    def seen(run_id: str) -> str:
        r = tracker.client.get_run(run_id)
        history = {
            k: [
                (m.step, m.timestamp, m.value)
                for m in tracker.client.get_metric_history(run_id, k)
            ]
            for k in r.data.metrics
        }
        tags = {k: v for k, v in r.data.tags.items() if k not in ("mlflow.runName",)}
        got = (r.info.status, r.data.params, r.data.metrics, history, tags, r.info.end_time > 0)
        return json.dumps(got, sort_keys=True)  # NaN compares equal as text

    for a, b in zip(bulk, one_by_one, strict=True):
        assert seen(a) == seen(b)
    assert tracker.client.get_run(bulk[0]).data.metrics["val_acc"] == 0.6  # the latest step


def test_creating_many_runs_at_once_writes_what_create_run_writes(tmp_path: Path) -> None:
    from seedhp.job.tracking import Start

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "seedhp")
    parent = tracker.start_run("parent", {})
    spec = [
        Start(f"s{i} cnn/digits", {"seed": str(i), "config_id": "abc"}, parent) for i in (0, 1)
    ]
    bulk = tracker.start_many(spec)
    alone = tracker.start_many(spec[:1])  # one item: MLflow's create_run

    def seen(run_id: str) -> dict:  # type: ignore[type-arg]
        r = tracker.client.get_run(run_id)
        info = r.info
        return {
            "status": info.status,
            "stage": info.lifecycle_stage,
            "user": info.user_id,
            "name": info.run_name,
            "experiment": info.experiment_id,
            "artifacts": info.artifact_uri.replace(run_id, "<id>"),
            "tags": r.data.tags,
            "children": [c.info.run_id for c in tracker.children(parent)].count(run_id),
        }

    assert seen(bulk[0]) == seen(alone[0])
    assert seen(bulk[1])["tags"]["seed"] == "1" and tracker.is_open(bulk[1])
    tracker.log_text(bulk[1], "seed: 1\n", "config.yaml")
    got = tracker.client.download_artifacts(bulk[1], "config.yaml", str(tmp_path))
    assert Path(got).read_text() == "seed: 1\n"


def test_reading_a_parents_runs_gives_what_search_runs_gives(tmp_path: Path) -> None:
    """children() reads the SQL tables itself: the same runs in the same order, each with the
    same info, latest metrics (NaN too), params and tags as MLflow's search_runs; deleted runs,
    another parent's and another experiment's are left out."""
    from seedhp.job.tracking import PARENT_TAG, Finish, Start, metric

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker, other = Tracker(uri, "seedhp"), Tracker(uri, "elsewhere")
    parent, stranger = tracker.start_run("parent", {}), tracker.start_run("stranger", {})
    ids = tracker.start_many([Start(f"s{i}", {"seed": str(i)}, parent) for i in range(4)])
    tracker.start_many([Start("not mine", {}, stranger), Start("nor this", {}, stranger)])
    other.start_run("far", {}, parent_id=parent)
    tracker.finish_many(
        [
            Finish(
                run_id,
                "FINISHED",
                [metric("val_acc", 0.5 + i / 10, 1, 1000), metric("loss", float("nan"), 1, 1000)],
                {"optimizer.lr": "0.1", "seed": str(i)},
                {"seedhp.status": "finished"},
            )
            for i, run_id in enumerate(ids[:3])
        ]
    )
    tracker.delete_run(ids[3])

    def seen(runs: list) -> list[str]:  # type: ignore[type-arg]
        return [
            json.dumps([dict(r.info), r.data.metrics, r.data.params, r.data.tags], sort_keys=True)
            for r in runs
        ]

    mlflows = tracker.search(f"tags.`{PARENT_TAG}` = '{parent}'")
    assert seen(tracker.children(parent)) == seen(mlflows)
    assert {r.info.run_id for r in mlflows} == set(ids[:3])
    some = tracker.children(parent, params=("seed", "absent"))  # only the params asked for
    assert [r.data.params for r in some] == [{"seed": r.data.params["seed"]} for r in mlflows]
    assert [r.data.tags for r in some] == [r.data.tags for r in mlflows]


def test_two_workers_creating_the_experiment_at_once_share_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers of a shared study start together: each looks the experiment up, finds none,
    and creates it; the one that loses the race uses the winner's (seen once on an MLflow
    server: RESOURCE_ALREADY_EXISTS took a worker down)."""
    from seedhp.job import tracking

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    winner = Tracker(uri, "shared")
    loser = MlflowClient(tracking_uri=uri)
    monkeypatch.setattr(loser, "get_experiment_by_name", _none_then(loser.get_experiment_by_name))
    got = tracking._experiment_id.__wrapped__(loser, uri, "shared")
    assert got == winner.experiment_id


def _none_then(lookup):  # type: ignore[no-untyped-def]
    calls = []

    def first_none(name):  # type: ignore[no-untyped-def]
        calls.append(name)
        return None if len(calls) == 1 else lookup(name)

    return first_none
