"""A study: one YAML file whose axes expand into a grid of training trials.

Sections (validated before Ray starts; errors name the setting):

* ``study``: name, description;
* ``axes``: ``model`` (a size ladder or a list of encoder settings), ``languages`` (explicit
  lists, or counts k of a nested ordering), ``strategy`` (names, or ``{name: hybrid, alpha: a}``),
  ``seed``, and ``params`` (any other training setting by its dotted name, with a list of values);
* ``train``: the fixed training configuration (sections of ``TrainConfig``);
* ``benchmarks``: evaluation sources; ``zero_shot``: ``drop`` or ``refuse`` overlapping items;
* ``resources``: workers per trial, CPUs and GPUs per worker, concurrent trials;
* ``storage``: a local folder (cloud URIs are refused for now);
* ``keep_models``: keep each trial's final model (default true; resume checkpoints are always
  removed once a trial's results are written).

Every trial's identity is a hash of its axis values, so a resumed study recognises finished
trials whatever order the grid is expanded in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaling.languages import LanguageOrdering, canonical_many
from scaling.models.ladder import SizeLadder
from scaling.samplers import STRATEGIES
from scaling.training.config import TrainConfig, parse_override

SECTIONS = ("study", "axes", "train", "benchmarks", "zero_shot", "resources", "storage", "keep_models")


class StudyConfigError(ValueError):
    """A study setting that cannot work; the message names it."""


@dataclass(frozen=True)
class Resources:
    workers_per_trial: int = 2
    cpus_per_worker: float = 0.5
    gpus_per_worker: float = 0.0
    concurrent_trials: int = 1


@dataclass(frozen=True)
class Trial:
    trial_id: str
    axes: dict[str, Any]  # what varies, for result columns
    config: TrainConfig


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    trials: tuple[Trial, ...]
    benchmarks: tuple[str, ...]
    zero_shot: str
    resources: Resources
    storage: str
    keep_models: bool
    raw: dict = field(repr=False)  # the resolved YAML, recorded with results

    def estimated_steps(self) -> int:
        return sum(t.config.optim.max_steps for t in self.trials)

    def describe(self) -> str:
        lines = [f"study {self.name}: {len(self.trials)} trials, {self.estimated_steps()} training steps in all, "
                 f"benchmarks {', '.join(self.benchmarks)}, storage {self.storage}"]
        for t in self.trials:
            axes = ", ".join(f"{k}={_short(v)}" for k, v in t.axes.items() if v is not None and k != "model")
            lines.append(f"  {t.trial_id}  {axes}  steps={t.config.optim.max_steps}")
        return "\n".join(lines)


def trial_id(axes: dict[str, Any]) -> str:
    """A trial's identity: a hash of its axis values, whatever order the grid is expanded in."""
    return hashlib.blake2b(json.dumps(axes, sort_keys=True).encode(), digest_size=4).hexdigest()


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]" if len(value) <= 6 else f"[{len(value)} languages]"
    return str(value)


def _models(spec: Any) -> list[dict[str, Any]]:
    """``{ladder: {family, sizes}}`` or a list of encoder settings (dicts) or model names."""
    if isinstance(spec, dict) and "ladder" in spec:
        ladder = spec["ladder"]
        try:
            ladder = SizeLadder(ladder["family"], tuple(tuple(s) if isinstance(s, list) else s for s in ladder["sizes"]))
        except (KeyError, TypeError) as exc:
            raise StudyConfigError(f"axes.model.ladder needs 'family' and 'sizes' ({exc})") from None
        except ValueError as exc:
            raise StudyConfigError(f"axes.model.ladder: {exc}") from None
        return [{"model": c.model, "num_layers": c.num_layers, "size": label}
                for c, label in zip(ladder.encoder_configs(), ladder.labels())]
    if isinstance(spec, list) and spec:
        out = []
        for item in spec:
            entry = {"model": item} if isinstance(item, str) else dict(item)
            if "model" not in entry:
                raise StudyConfigError(f"axes.model entry {item!r} has no 'model'")
            entry.setdefault("size", entry["model"] + (f" ({entry['num_layers']} layers)" if entry.get("num_layers") else ""))
            out.append(entry)
        return out
    raise StudyConfigError("axes.model must be {ladder: {family, sizes}} or a non-empty list of models")


def _check_codes(codes: Any) -> None:
    bad = [c for c in codes if isinstance(c, bool)]
    if bad:
        raise StudyConfigError("axes.languages: a language code was read as a boolean (YAML reads no/yes/on/off "
                               "as booleans); quote it, e.g. 'no', or use nb for Norwegian Bokmal")


def _language_sets(spec: Any) -> list[tuple[str, ...] | None]:
    """Explicit lists, or ``{ordering: [...], counts: [k, ...]}`` nested first-k subsets."""
    if isinstance(spec, dict):
        _check_codes(spec.get("ordering") or [])
    elif isinstance(spec, list):
        for item in spec:
            _check_codes(item if isinstance(item, list) else [item])
    if spec is None:
        return [None]  # every language of the corpus
    if isinstance(spec, dict):
        try:
            ordering = LanguageOrdering(tuple(spec["ordering"]), name="axes.languages.ordering")
            return [ordering.first(int(k)) for k in spec["counts"]]
        except KeyError as exc:
            raise StudyConfigError(f"axes.languages needs 'ordering' and 'counts' (missing {exc})") from None
        except ValueError as exc:
            raise StudyConfigError(f"axes.languages: {exc}") from None
    if isinstance(spec, list) and spec and all(isinstance(s, list) for s in spec):
        try:
            return [tuple(canonical_many(s)) for s in spec]
        except ValueError as exc:
            raise StudyConfigError(f"axes.languages: {exc}") from None
    raise StudyConfigError("axes.languages must be a list of language lists or {ordering: [...], counts: [...]}")


def _strategies(spec: Any) -> list[dict[str, Any]]:
    out = []
    for item in spec or ["hybrid"]:
        entry = {"name": item} if isinstance(item, str) else dict(item)
        if entry.get("name") not in STRATEGIES:
            raise StudyConfigError(f"axes.strategy {entry.get('name')!r} is unknown; choose from {sorted(STRATEGIES)}")
        if "alpha" in entry and not 0 <= float(entry["alpha"]) <= 1:
            raise StudyConfigError(f"axes.strategy alpha must be in [0, 1], not {entry['alpha']}")
        out.append(entry)
    return out


def load_study(path: str | Path, overrides: list[str] | None = None) -> Study:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return build_study(raw, overrides or [], origin=str(path))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``--set key=value``: dotted keys into the YAML tree (values parsed as YAML)."""
    raw = json.loads(json.dumps(raw))
    for item in overrides:
        try:
            key, value = parse_override(item)
        except ValueError as exc:
            raise StudyConfigError(str(exc)) from None
        *path, last = key.split(".")
        if path and path[0] not in SECTIONS or not path and last not in SECTIONS:
            raise StudyConfigError(f"override {key!r}: unknown section; sections are {list(SECTIONS)}")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise StudyConfigError(f"override {key!r}: {part!r} is not a section")
        node[last] = value
    return raw


def build_study(raw: dict, overrides: list[str], origin: str = "study") -> Study:
    raw = apply_overrides(raw, overrides)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise StudyConfigError(f"{origin}: unknown section(s) {unknown}; a study has {list(SECTIONS)}")
    meta = raw.get("study") or {}
    name = str(meta.get("name") or Path(origin).stem)
    axes = raw.get("axes") or {}
    unknown_axes = sorted(set(axes) - {"model", "languages", "strategy", "seed", "params"})
    if unknown_axes:
        raise StudyConfigError(f"unknown axes {unknown_axes}; axes are model, languages, strategy, seed, params")
    try:
        base = TrainConfig.from_dict(raw.get("train") or {})
    except ValueError as exc:
        raise StudyConfigError(f"train: {exc}") from None
    resources = Resources(**(raw.get("resources") or {}))
    if resources.workers_per_trial < 1 or resources.concurrent_trials < 1:
        raise StudyConfigError("resources.workers_per_trial and resources.concurrent_trials must be >= 1")
    zero_shot = raw.get("zero_shot", "drop")
    if zero_shot not in ("drop", "refuse"):
        raise StudyConfigError(f"zero_shot must be 'drop' or 'refuse', not {zero_shot!r}")
    benchmarks = tuple(raw.get("benchmarks") or ())
    if not benchmarks:
        raise StudyConfigError("benchmarks: list at least one evaluation benchmark")
    params = axes.get("params") or {}
    if not isinstance(params, dict) or any(not isinstance(v, list) or not v for v in params.values()):
        raise StudyConfigError("axes.params must map dotted training settings to non-empty lists of values")

    grids = [("model", _models(axes.get("model") or [{"model": base.encoder.model}])),
             ("languages", _language_sets(axes.get("languages"))),
             ("strategy", _strategies(axes.get("strategy"))),
             ("seed", list(axes.get("seed") or [base.sampler.seed]))]
    grids += [(f"params.{k}", list(v)) for k, v in params.items()]
    trials = []
    for combo in itertools.product(*[values for _, values in grids]):
        chosen = dict(zip([n for n, _ in grids], combo))
        model, strategy = chosen["model"], chosen["strategy"]
        values = {"encoder.model": model["model"], "encoder.num_layers": model.get("num_layers"),
                  "sampler.strategy": strategy["name"], "sampler.seed": chosen["seed"],
                  "data.languages": list(chosen["languages"]) if chosen["languages"] else None,
                  "run.num_workers": resources.workers_per_trial, "run.cpus_per_worker": resources.cpus_per_worker,
                  "run.use_gpu": resources.gpus_per_worker > 0}
        if "alpha" in strategy:
            values["sampler.alpha"] = strategy["alpha"]
        values.update({k[len("params."):]: v for k, v in chosen.items() if k.startswith("params.")})
        try:
            config = base.with_values(values)
        except ValueError as exc:
            raise StudyConfigError(f"axes: {exc}") from None
        axes_values = {"model": model["model"], "size": model["size"], "num_layers": model.get("num_layers"),
                       "strategy": strategy["name"], "alpha": config.sampler.alpha if strategy["name"] == "hybrid" else None,
                       "languages": list(chosen["languages"]) if chosen["languages"] else None,
                       "num_languages": len(chosen["languages"]) if chosen["languages"] else None,
                       "seed": chosen["seed"], **{k: v for k, v in chosen.items() if k.startswith("params.")}}
        trials.append(Trial(trial_id(axes_values), axes_values, config))
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):
        raise StudyConfigError("two trials have the same axis values; remove the duplicate axis entries")
    keep_models = raw.get("keep_models", True)
    if not isinstance(keep_models, bool):
        raise StudyConfigError(f"keep_models must be true or false, not {keep_models!r}")
    return Study(name, str(meta.get("description", "")), tuple(trials), benchmarks, zero_shot, resources,
                 str(raw.get("storage") or "results"), keep_models, raw)
