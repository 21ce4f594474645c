"""The task behind `python -m seedhp`: composed configs in, one MLflow seed-run per seed out.

`train_pack` reads top to bottom: check the configuration, derive each seed's settings and
streams, start each seed's MLflow run (`_start`; the pack's in one go), train the pack
(seedhp.train.loop), finish each run (`_finish`; the pack's in one go); a plain
`python -m seedhp` run is a pack of one (`run`).

This module is the edge where Hydra's DictConfig becomes plain typed values (seedhp.job.settings)
and instantiated objects (model factory, optimizer factory, data source); below it nothing sees
Hydra.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from seedhp import faults, heap
from seedhp.errors import ConfigError, exit_on_config_error  # noqa: F401 (re-exported)
from seedhp.job import claims, record
from seedhp.job.hooks import Pruned, Reporter, report_epoch
from seedhp.job.identity import configuration_overrides
from seedhp.job.settings import Settings, check_seed, flatten, parse, resolve_device
from seedhp.job.tracking import Finish, Start, Tracker, metric
from seedhp.job.urls import redact
from seedhp.job.yaml_text import Entries
from seedhp.train.data import Source, Splits, check_augment, from_parts, split, split_many
from seedhp.train.loop import SeedResult, objective_value, train
from seedhp.train.models import ModelFactory, check_model
from seedhp.train.probe import Choice, choose_engine
from seedhp.train.seeds import SeedStreams, derive_seeds

log = logging.getLogger("seedhp")
FLUSH_SECONDS = 30.0  # a long run's curves reach MLflow at least this often
MAX_CLAIM_ROUNDS = 3  # seeds orphaned by dead processes this often are trained unclaimed


@dataclass(frozen=True)
class JobInfo:
    """What Hydra knows about the job, as plain values (defaults outside Hydra)."""

    multirun: bool = False
    output_dir: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Model, data, optimizer and every non-seed override: names a configuration."""
        picked = dict(self.choices)
        groups = ("model", "data", "optimizer", "schedule")
        parts = [picked.get(g, "?") for g in groups]
        extra = [
            o
            for o in configuration_overrides(self.overrides)
            if o.split("=", 1)[0].lstrip("+~")
            not in (
                *groups,
                "paths.outputs",
                "paths.data",
                "experiment",
                "search",
                "model._target_",  # named in place of `custom` already
                "data.source._target_",
            )
        ]
        return " ".join(["/".join(parts), *sorted(extra)])


def named_choices(choices: Any, cfg: DictConfig | None) -> tuple[tuple[str, str], ...]:
    """The config group choices of a job, the user's own targets named for `custom`
    (model=custom is its model._target_, data=custom its data.source._target_)."""
    picked = {str(k): str(v) for k, v in choices.items() if v is not None and "hydra" not in k}
    for group, key in (("model", "model._target_"), ("data", "data.source._target_")):
        if picked.get(group) == "custom" and cfg is not None:
            picked[group] = str(OmegaConf.select(cfg, key, default="custom"))
    return tuple(sorted(picked.items()))


def check(cfg: DictConfig) -> tuple[Settings, Splits]:
    """Everything about a job that can be wrong before training: config values, the data set,
    batch size against the data, the device, the model against the data, the tracking store."""
    settings = parse(_container(cfg))
    resolve_device(settings.device)
    streams = derive_seeds(settings.seed, settings.pinned)
    data = load_splits(cfg, settings.val_size, streams.split, settings.draw_test)
    if settings.train.batch_size > len(data.train):
        raise ConfigError(
            "train.batch_size",
            settings.train.batch_size,
            f"must be <= the {len(data.train)} training examples of {data.name}",
        )
    check_augment(settings.train.augment, data.shape, settings.train.crop_padding)
    check_model(model_factory(cfg), data.shape, data.num_classes)
    Tracker(settings.tracking.uri, settings.tracking.experiment)
    return settings, data


def model_factory(cfg: DictConfig) -> ModelFactory:
    """The model callable of `cfg.model` under seedhp's contract (seedhp.models.ModelFactory)."""
    if OmegaConf.is_missing(cfg.model, "_target_"):
        raise ConfigError(
            "model._target_",
            "???",
            "model=custom needs your model: model._target_=pkg.module.Name (a callable that "
            "returns a torch.nn.Module)",
        )
    target = str(OmegaConf.select(cfg, "model._target_", default="?"))
    try:
        return ModelFactory(_instantiate(cfg.model), target)
    except ConfigError:
        raise
    except Exception as err:  # Hydra cannot import or call the target
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("model._target_", target, f"cannot be used: {text}"[:400]) from None


# (config_id and what the choice depends on) -> the engine chosen, in this process
_ENGINES: dict[tuple[str, ...], Choice] = {}


def pack_engine(cfg: DictConfig, settings: Settings, data: Splits, device: torch.device) -> str:
    """The engine every seed of this configuration trains with, alone or packed: train.engine,
    or for `auto` the probe's choice, made once per configuration and process."""
    t = settings.train
    key = (settings.config_id, str(device), t.kernels, t.precision, t.engine)
    if key not in _ENGINES:
        choice = choose_engine(
            model_factory(cfg), _instantiate(cfg.optimizer), data, settings.train, device
        )
        if choice.rejected:
            log.warning(
                "model %s: %s; its seeds train with the %s engine",
                OmegaConf.select(cfg, "model._target_"),
                "; ".join(choice.rejected),
                choice.engine,
            )
        _ENGINES[key] = choice
        heap.started()  # the probe's late imports (torch._dynamo) join the frozen start-up
    return _ENGINES[key].engine


def run(cfg: DictConfig, info: JobInfo | None = None) -> float:
    """Train one seed-run, record it in MLflow, return the objective. `info`: what Hydra knows
    of the job (seedhp.sweep.launch.job_info); none outside Hydra."""
    [value] = train_pack(cfg, [check_seed(cfg.get("seed"))], [info or JobInfo()])
    if isinstance(value, BaseException):
        raise value
    return value


class PackFailed(RuntimeError):
    """A pack of K > 1 seeds stopped with an error; its runs are deleted, to be trained again
    in smaller packs, so that the error lands on the seeds that cause it and no others."""


class PackOutOfMemory(PackFailed):
    """The pack did not fit the device: train its seeds in smaller packs (its runs are gone)."""


def run_pack(
    cfgs: Sequence[DictConfig],
    infos: Sequence[JobInfo],
    on_epoch: Reporter | None = None,
    on_pack_epoch: Callable[[int, int, int], None] | None = None,
) -> list[float | BaseException]:
    """`train_pack` for configs given one per seed: each is checked, and they must be one
    configuration (one config_id)."""
    if len({check(cfg)[0].config_id for cfg in cfgs}) != 1:
        raise ValueError("a pack holds one configuration: its jobs may differ only in seed")
    return train_pack(cfgs[0], [int(c.seed) for c in cfgs], infos, on_epoch, on_pack_epoch)


def train_pack(
    cfg: DictConfig,
    seeds: Sequence[int],
    infos: Sequence[JobInfo],
    on_epoch: Reporter | None = None,
    on_pack_epoch: Callable[[int, int, int], None] | None = None,
    attempt: int = 1,
) -> list[float | BaseException]:
    """Train one configuration on `seeds` as one pack, one MLflow run each; a plain run is a
    pack of one. Returns each seed's objective, or the error that stopped the pack.
    `on_epoch(epoch, objective)`: a one-seed pack's trial pruner (seedhp.job.hooks), else the
    reporter a launcher installed around Hydra's run_job. `on_pack_epoch(epoch, epochs,
    alive)`: the launcher's progress display.

    `cfg` is checked once; each seed's settings and resolved config are derived from it (in
    full per seed when a value of the config interpolates the seed). With tracking.claim (the
    grid sweeper's), a seed another process has finished or is training is not trained here:
    its run is waited for and reused, or trained after all if its process dies unfinished
    (seedhp.job.claims; `attempt` counts those rounds).
    """
    seeds = [check_seed(s) for s in seeds]
    containers = seed_containers(cfg, seeds)
    first, data = check(cfg)
    splits = _split_streams(seeds, containers)
    if len(set(splits)) > 1:  # seeds.split follows the seed: seed k's parts are its split's
        log.info(
            "seeds.split follows the seed: %d seeds on %d validation splits train as one pack",
            len(seeds),
            len(set(splits)),
        )
        data = load_pack_splits(cfg, first.val_size, splits, first.draw_test)
    settings = [
        replace(first, seed=s)
        if c.get("seed") == s and _only_seed_differs(c, containers[0])
        else parse(c)
        for s, c in zip(seeds, containers, strict=True)
    ]
    device = resolve_device(first.device)
    streams = [derive_seeds(s.seed, s.pinned) for s in settings]
    _reset_global_state(streams[0], first.deterministic)
    data = data.to(device)
    engine = pack_engine(cfg, first, data, device)
    settings = [replace(s, train=replace(s.train, engine=engine)) for s in settings]
    tracker = Tracker(first.tracking.uri, first.tracking.experiment)
    records: list[_RunLog] = []
    claim = first.tracking.claim and attempt <= MAX_CLAIM_ROUNDS
    held: dict[int, Any] = {}
    try:
        with claims.store_lock(tracker, first.config_id) if claim else nullcontext(True) as exact:
            held = claims.taken(tracker, first.config_id, seeds) if claim else {}
            keep = [i for i, s in enumerate(seeds) if s not in held]
            texts = Entries()  # the seeds' config.yaml artifacts share all but the seed's line
            starts = [
                _start(containers[i], settings[i], streams[i], infos[i], data, len(keep), texts)
                for i in keep
            ]
            run_ids = tracker.start_many([start for start, _, _ in starts])
        if claim and not exact:  # no lock to hold: look again, the earlier run wins
            lost = claims.beaten(
                tracker, first.config_id, {seeds[i]: r for i, r in zip(keep, run_ids, strict=True)}
            )
            for i, run_id in zip(keep, run_ids, strict=True):
                if seeds[i] in lost:
                    tracker.delete_run(run_id)
            held.update(lost)
            mine = [
                (i, r, st)
                for i, r, st in zip(keep, run_ids, starts, strict=True)
                if seeds[i] not in lost
            ]
            keep, run_ids, starts = (
                [m[0] for m in mine],
                [m[1] for m in mine],
                [m[2] for m in mine],
            )
        settings, infos_kept = [settings[i] for i in keep], [infos[i] for i in keep]
        streams = [streams[i] for i in keep]
        for run_id, (_, params, config), s, info in zip(
            run_ids, starts, settings, infos_kept, strict=True
        ):
            tracker.log_text(run_id, config, "config.yaml")
            records.append(
                _RunLog(
                    tracker,
                    run_id,
                    params,
                    s.objective,
                    verbose=not info.multirun,
                    on_epoch=(on_epoch or report_epoch) if len(keep) == 1 else None,
                )
            )
        trained = (
            _train_and_finish(
                cfg, settings, infos_kept, streams, data, device, tracker, records, on_pack_epoch
            )
            if keep
            else []
        )
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a SLURM time limit): not the seeds' fault
        for record in records:
            if tracker.is_open(record.run_id):
                record.send()
                tracker.interrupt(record.run_id, "its process was interrupted (SIGINT/SIGTERM)")
        raise
    except faults.Fault as fault:  # a full disk, a store gone: what was logged, where it can be
        for record in records:
            if tracker.is_open(record.run_id):
                with contextlib.suppress(Exception):
                    record.send()
                    tracker.interrupt(record.run_id, fault.line)
        raise
    values = {seeds[i]: v for i, v in zip(keep, trained, strict=True)}
    if held:  # other processes' runs of these seeds: wait for them, train the orphans here
        t = first.tracking
        reused, orphans = claims.wait(
            tracker, first.config_id, held, first.objective, t.parent_run_id, t.role
        )
        values.update(reused)
        if orphans:
            again = train_pack(
                cfg,
                orphans,
                [infos[seeds.index(s)] for s in orphans],
                on_epoch,
                on_pack_epoch,
                attempt + 1,
            )
            values.update(zip(orphans, again, strict=True))
    return [values[s] for s in seeds]


def seed_containers(cfg: DictConfig, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Each seed's resolved config (without Hydra's node). Resolved once and the seed set per
    seed, unless resolving under another seed changes another value (an interpolation of
    `${seed}`): then resolved per seed. `cfg` keeps its own seed."""
    own = cfg.get("seed")
    try:
        with read_write(cfg), open_dict(cfg):
            cfg.seed = seeds[0]
            base = _container(cfg)
            cfg.seed = seeds[0] + 1
            probe = _container(cfg)
            if _only_seed_differs(base, probe):
                return [{**base, "seed": s} for s in seeds]
            out = []
            for s in seeds:
                cfg.seed = s
                out.append(_container(cfg))
            return out
    finally:
        with read_write(cfg), open_dict(cfg):
            cfg.seed = own


def _split_streams(seeds: Sequence[int], containers: Sequence[dict[str, Any]]) -> list[int]:
    """Each seed's validation split (its `split` stream): one value unless `seeds.split`
    follows the seed."""
    pins = parse(containers[0]).pinned
    return [
        derive_seeds(
            s, pins if c.get("seeds") == containers[0].get("seeds") else parse(c).pinned
        ).split
        for s, c in zip(seeds, containers, strict=True)
    ]


def _only_seed_differs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "seed"} == {
        k: v for k, v in b.items() if k != "seed"
    }


def _train_and_finish(
    cfg: DictConfig,
    settings: Sequence[Settings],
    infos: Sequence[JobInfo],
    streams: Sequence[SeedStreams],
    data: Splits,
    device: torch.device,
    tracker: Tracker,
    records: Sequence[_RunLog],
    on_pack_epoch: Callable[[int, int, int], None] | None = None,
) -> list[float | BaseException]:
    first = settings[0]

    def on_epoch(epoch: int, epochs: int, per_seed: list[dict[str, float] | None]) -> None:
        for record, values in zip(records, per_seed, strict=True):
            record(epoch, epochs, [values])
        if on_pack_epoch is not None:
            on_pack_epoch(epoch, epochs, sum(v is not None for v in per_seed))

    try:
        results = train(
            model_factory(cfg),
            _instantiate(cfg.optimizer),
            data,
            streams,
            first.train,
            device,
            on_epoch=on_epoch,
            keep_predictions=first.tracking.save_predictions,
        )
    except Pruned:  # the Optuna trial's pruner stopped it: a short run, not a failure
        [record] = records
        record.send(tags={"seedhp.status": "pruned"})
        tracker.end_run(record.run_id, "KILLED")
        log.debug("seed %d pruned after epoch %d", first.seed, record.epochs)
        return [record.last_objective]
    except Exception as err:
        if (fault := faults.fault_of(err)) is not None:
            raise fault from err  # not the seeds': the command stops, its runs interrupted
        if len(records) > 1:
            for record in records:
                tracker.delete_run(record.run_id)
            if _out_of_memory(err):
                raise PackOutOfMemory(f"{len(records)} seeds did not fit: {err}") from err
            raise PackFailed(f"a pack of {len(records)} seeds failed: {err}") from err
        for record in records:
            record.send(
                tags={"seedhp.status": "failed", "seedhp.error": f"{type(err).__name__}: {err}"}
            )
            tracker.end_run(record.run_id, "FAILED")
        return [err] * len(records)
    tracker.finish_many(
        [
            _finish(tracker, record, result, data.test.labels(k))
            for k, (record, result) in enumerate(zip(records, results, strict=True))
        ]
    )
    values: list[float | BaseException] = []
    for record, result, s, info in zip(records, results, settings, infos, strict=True):
        value = objective_value(result.final, s.objective)
        (log.debug if info.multirun else log.info)(
            "seed %d %s: %s %.4f, test_acc %.4f (%.2f s) -> MLflow run %s",
            s.seed,
            result.status,
            s.objective,
            value,
            result.final["test_acc"],
            result.final["train_seconds"],
            record.run_id,
        )
        values.append(value)
    return values


def _out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's "can't allocate memory"."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err)
    )


# ----------------------------------------------------------------------------------------------


def _container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without Hydra's own node (whose runtime values a composed sweep
    config does not have yet)."""
    return {
        str(k): OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in ((k, cfg[k]) for k in cfg if k != "hydra")
    }


def _instantiate(node: DictConfig) -> Any:
    """Hydra's `_target_` convention without Hydra: import the target and call it with the
    node's other keys (plain containers; nested `_target_` nodes built first); with
    `_partial_: true`, a functools.partial to call later."""
    spec = OmegaConf.to_container(node, resolve=True)
    assert isinstance(spec, dict)
    return _build(spec)


def _build(spec: Any) -> Any:
    if isinstance(spec, list):
        return [_build(v) for v in spec]
    if not isinstance(spec, dict):
        return spec
    if "_target_" not in spec:
        return {k: _build(v) for k, v in spec.items()}
    kwargs = {k: _build(v) for k, v in spec.items() if not k.startswith("_")}
    target = _locate(str(spec["_target_"]))
    if spec.get("_partial_"):
        return functools.partial(target, **kwargs)
    return target(**kwargs)


def _locate(path: str) -> Any:
    """`pkg.module.Name` -> the object; the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise ImportError(f"Error locating target '{path}': no importable module or attribute")


@lru_cache(maxsize=4)
def _source(spec: str) -> Source:
    """Loaded once per process per data set (jobs of an in-process multirun share it; it is never
    modified in place)."""
    node = OmegaConf.create(json.loads(spec))
    name = str(node.get("_target_", "?"))
    try:
        loaded = _instantiate(node)
    except ConfigError:
        raise
    except Exception as err:  # the user's loader: cannot be imported, called, or it raised
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("data.source._target_", name, f"cannot load: {text}"[:400]) from None
    if isinstance(loaded, Source):
        return loaded
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2):
        raise ConfigError(
            "data.source._target_",
            name,
            f"returned a {type(loaded).__name__}; a data loader returns (train, test)",
        )
    return from_parts(loaded[0], loaded[1], name)


@lru_cache(maxsize=8)
def _splits(spec: str, val_size: int | float, split_seed: int, draw_test: bool) -> Splits:
    return split(_source(spec), val_size, split_seed, draw_test)


def load_splits(
    cfg: DictConfig, val_size: int | float, split_seed: int, draw_test: bool = False
) -> Splits:
    return _splits(_source_spec(cfg), val_size, split_seed, draw_test)


@lru_cache(maxsize=4)
def _pack_splits(
    spec: str, val_size: int | float, split_seeds: tuple[int, ...], draw_test: bool
) -> Splits:
    return split_many(_source(spec), val_size, split_seeds, draw_test)


def load_pack_splits(
    cfg: DictConfig, val_size: int | float, split_seeds: Sequence[int], draw_test: bool = False
) -> Splits:
    """A pack's data when seed k validates on split `split_seeds[k]` (seedhp.train.data)."""
    return _pack_splits(_source_spec(cfg), val_size, tuple(split_seeds), draw_test)


def _source_spec(cfg: DictConfig) -> str:
    """The data source's node as a cache key; a missing loader is a ConfigError."""
    if OmegaConf.is_missing(cfg.data.source, "_target_"):
        raise ConfigError(
            "data.source._target_",
            "???",
            "data=custom needs your loader: data.source._target_=pkg.module.load (a callable "
            "that returns (train, test))",
        )
    return json.dumps(OmegaConf.to_container(cfg.data.source, resolve=True), sort_keys=True)


def official_test(cfg: DictConfig) -> bool:
    """Whether the composed config's data set has an official test part (never redrawn)."""
    return _source(_source_spec(cfg)).official_test


def _reset_global_state(streams: SeedStreams, deterministic: bool) -> None:
    """Whatever ran before in this process, this job starts from the same global state.
    seedhp draws from its own generators; the global RNGs are reset for any library code that
    does not."""
    random.seed(streams.init)
    np.random.seed(streams.init % 2**32)
    torch.manual_seed(streams.init)
    if torch.are_deterministic_algorithms_enabled() != deterministic:  # ~30 ms even unchanged
        torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.set_grad_enabled(True)


def _start(
    resolved: Mapping[str, Any],
    settings: Settings,
    streams: SeedStreams,
    info: JobInfo,
    data: Splits,
    pack_size: int,
    texts: Entries,
) -> tuple[Start, dict[str, str], str]:
    """The run to create with its identifying tags, the params to send with its first batch
    of metrics, and its resolved config (the config.yaml artifact)."""
    container = dict(resolved)
    if container.get("tracking", {}).get("uri"):  # what MLflow shows never holds a password
        container["tracking"] = {
            **container["tracking"],
            "uri": redact(str(container["tracking"]["uri"])),
        }
    params = {
        **flatten(container),
        **streams.as_params(),
        "split.n_train": str(len(data.train)),  # the noise floor of a score needs these
        "split.n_val": str(len(data.val)),
        "split.n_test": str(len(data.test)),
    }
    picked = dict(info.choices)
    tags = {
        **record.seed_run_tags(
            settings.seed,
            settings.config_id,
            settings.tracking.label or info.label,
            settings.tracking.role,
            info.output_dir,
            configuration_overrides(info.overrides),
            settings.tracking.parent_run_id,
        ),
        record.PACK_SIZE: str(pack_size),  # seeds trained together with this one
        record.PACK_ENGINE: settings.train.engine,  # how: layers | vmap | none
        **{
            f"seedhp.{g}": picked[g]
            for g in ("model", "data", "optimizer", "schedule")
            if g in picked
        },
        **settings.tracking.tags,
    }
    trial = settings.tracking.tags.get(record.TRIAL)
    name = record.run_name(
        settings.seed,
        f"{_short(picked.get('model', 'model'))}/{_short(picked.get('data', 'data'))}",
        None if trial is None else int(trial),
    )
    config = texts.dump(container)
    return Start(name, tags, settings.tracking.parent_run_id), params, config


def _short(choice: str) -> str:
    """A custom target's last name (examples.own_model.NormedMLP -> NormedMLP)."""
    return choice.rsplit(".", 1)[-1]


class _RunLog:
    """One seed-run's pending MLflow record: params and per-epoch metrics, sent in one batch at
    the end, or every FLUSH_SECONDS for a long run (then its curves show while it trains)."""

    def __init__(
        self,
        tracker: Tracker,
        run_id: str,
        params: dict[str, str],
        objective: str,
        verbose: bool,
        on_epoch: Callable[[int, float], Any] | None = None,
    ) -> None:
        self.tracker, self.run_id, self.verbose, self.on_epoch = tracker, run_id, verbose, on_epoch
        self.params: dict[str, str] | None = params
        self.objective, self.last_objective, self.epochs = objective, math.nan, 0
        self.buffer: list[Any] = []
        self.last_flush = time.monotonic()

    def __call__(self, epoch: int, epochs: int, per_seed: list[dict[str, float] | None]) -> None:
        values = per_seed[0]
        if values is None:
            return
        now_ms = int(time.time() * 1000)
        self.buffer += [metric(k, v, epoch, now_ms) for k, v in values.items()]
        if self.verbose:
            log.info(
                "epoch %*d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  lr %.4g  (%.2f s)",
                len(str(epochs)),
                epoch,
                epochs,
                values["train_loss"],
                values["val_loss"],
                values["val_acc"],
                values["lr"],
                values["epoch_seconds"],
            )
        if time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.send()
        self.epochs = epoch
        if self.on_epoch is not None and self.objective in values:  # one-seed trials prune
            self.last_objective = values[self.objective]
            if self.on_epoch(epoch, values[self.objective]):
                raise Pruned(f"pruned after epoch {epoch}")

    def last(self, metrics: Sequence[Any], tags: dict[str, str], status: str) -> Finish:
        """Everything pending plus `metrics` and `tags`, and the run's end, for finish_many."""
        done = Finish(self.run_id, status, [*self.buffer, *metrics], self.params, tags)
        self.buffer, self.params = [], None
        return done

    def send(self, metrics: Sequence[Any] = (), tags: dict[str, str] | None = None) -> None:
        """Everything pending plus `metrics` and `tags`, in as few requests as MLflow allows."""
        self.tracker.log(
            self.run_id, metrics=[*self.buffer, *metrics], params=self.params, tags=tags
        )
        self.buffer, self.params = [], None
        self.last_flush = time.monotonic()


def _finish(tracker: Tracker, record: _RunLog, result: SeedResult, labels: torch.Tensor) -> Finish:
    """A finished seed's last record: the final scores and its status (the test predictions,
    when kept, with its test part's `labels`, as an artifact now); what is pending goes with it."""
    epochs = len(result.history["val_acc"])
    # a final score that is the last epoch's value is already logged at that step
    finals = [
        metric(k, v, epochs)
        for k, v in result.final.items()
        if not (result.history.get(k) and result.history[k][-1] == v)
    ]
    finals.append(metric("diverged", float(result.status == "diverged"), epochs))
    if result.diverged_epoch is not None:
        finals.append(metric("diverged_epoch", result.diverged_epoch, epochs))
    tags = {"seedhp.status": result.status}
    if result.test_predictions is not None:  # with the labels: a seed ensemble needs nothing else
        tags["seedhp.predictions"] = "test_predictions.json"
        blob = {"predictions": result.test_predictions, "labels": labels.tolist()}
        tracker.log_text(
            record.run_id, json.dumps(blob, separators=(",", ":")), "test_predictions.json"
        )
    return record.last(finals, tags, "FINISHED" if result.status == "finished" else "FAILED")
