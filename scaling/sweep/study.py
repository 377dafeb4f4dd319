"""A study: one YAML file whose axes expand into a grid of training trials.

Sections (validated before Ray starts; errors name the setting):

* ``study``: name, description;
* ``axes``: ``model`` (a size ladder, or a list of model names or encoder settings, each entry
  overriding ``train.encoder`` for its trials), ``languages`` (explicit lists, or counts k of a
  nested ordering), ``strategy`` (names, or ``{name: hybrid, alpha: a}`` with any parameters of
  that registered strategy), ``seed``, and ``params`` (any other training setting by its dotted
  name, with a list of values);
* ``train``: the fixed training configuration (sections of ``TrainConfig``; ``train.sampler``
  may hold parameters of any strategy on the axis, each trial takes those of its own);
* ``benchmarks``: evaluation sources; ``eval``: evaluation options (``EvalConfig``: settings,
  ks, metrics, batch_size, max_length, memory_mb, device, backend); ``zero_shot``: ``drop`` or ``refuse``
  overlapping items;
* ``resources``: workers per trial, CPUs and GPUs per worker (fractions stay fractions),
  concurrent trials, and the evaluation stage's own CPUs and GPUs;
* ``storage``: a local folder or a cloud URI;
* ``keep_models``: keep each trial's final model (default true; resume checkpoints are always
  removed once a trial's results are written).

A trial's id hashes its axis values and every resolved setting (``scaling.records.trial_id``),
whatever order the grid is expanded in; the study's fingerprint adds the content of its data,
and ``--resume`` refuses a study whose fingerprint changed (``scaling.sweep.identity``).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from scaling.data.sources import with_language_subset
from scaling.eval.evaluate import EvalConfig
from scaling.languages import LanguageOrdering, canonical_many, named_ordering
from scaling.models.encoder import EncoderConfig
from scaling.models.ladder import SizeLadder
from scaling.names import closest
from scaling.plan import TrialResources
from scaling.records import trial_id
from scaling.samplers import STRATEGIES, SamplerConfigError, get_strategy
from scaling.sweep.identity import eval_identity, settings_identity
from scaling.training.config import SAMPLER_SHARED, TrainConfig, parse_override, set_dotted

SECTIONS = ("study", "axes", "train", "benchmarks", "eval", "zero_shot", "resources", "storage", "keep_models")
AXES = ("model", "languages", "strategy", "seed", "params")
EVAL_KEYS = ("settings", "ks", "metrics", "batch_size", "max_length", "memory_mb", "device", "backend", "encoder",
             "encoder_actors")


class StudyConfigError(ValueError):
    """A study setting that cannot work; the message names it."""


def _strict(raw: Any, known: tuple[str, ...] | list[str], where: str) -> dict:
    """``raw`` as a mapping whose keys are all in ``known``; else an error with the closest name."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise StudyConfigError(f"{where} should be a mapping, found {type(raw).__name__}")
    for key in raw:
        if key not in known:
            close = closest(str(key), known)
            raise StudyConfigError(f"unknown setting {where}.{key}" + (f" (did you mean {where}.{close}?)" if close else "")
                                   + f"; {where} accepts {list(known)}")
    return raw


@dataclass(frozen=True)
class Resources:
    workers_per_trial: int = 2
    cpus_per_worker: float = 0.5
    gpus_per_worker: float = 0.0
    concurrent_trials: int = 1
    eval_cpus: float = 1.0  # the evaluation stage's own reservation, after training releases its workers
    eval_gpus: float = 0.0
    gpu_memory_gb: float | None = None  # per worker: trials the memory planner says exceed it are refused
    gpu_tflops: float = 312.0  # the accelerator's peak, for the planner's time per step (A100 bf16)

    @classmethod
    def from_dict(cls, raw: Any) -> "Resources":
        raw = _strict(raw, [f.name for f in fields(cls)], "resources")
        for f in fields(cls):
            if f.name in raw and not (raw[f.name] is None and "None" in f.type):
                value, integer = raw[f.name], f.type == "int"
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
                    raise StudyConfigError(f"resources.{f.name} should be {'an integer' if integer else 'a number'}, "
                                           f"got {value!r}")
        out = cls(**raw)
        if out.workers_per_trial < 1 or out.concurrent_trials < 1:
            raise StudyConfigError("resources.workers_per_trial and resources.concurrent_trials must be >= 1")
        if out.cpus_per_worker <= 0 or min(out.gpus_per_worker, out.eval_cpus, out.eval_gpus) < 0:
            raise StudyConfigError("resources: cpus_per_worker must be > 0; GPUs and evaluation CPUs >= 0")
        return out

    def for_trial(self) -> TrialResources:
        return TrialResources(self.workers_per_trial, self.cpus_per_worker, self.gpus_per_worker,
                              self.eval_cpus, self.eval_gpus)


@dataclass(frozen=True)
class Trial:
    trial_id: str
    axes: dict[str, Any]  # what varies, for result columns
    config: TrainConfig
    identity: dict[str, Any] = field(default_factory=dict, repr=False)  # what its id hashes
    resources: Resources = field(default_factory=Resources)  # the study's, or its model entry's


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
    eval: EvalConfig = EvalConfig()
    raw: dict = field(default_factory=dict, repr=False)  # the resolved YAML, recorded with results
    zero_shot_languages: tuple[str, ...] = ()  # evaluation languages no trial may train on

    def estimated_steps(self) -> int:
        return sum(t.config.optim.max_steps for t in self.trials)

    def describe(self) -> str:
        lines = [f"study {self.name}: {len(self.trials)} trials, {self.estimated_steps()} training steps in all, "
                 f"benchmarks {', '.join(self.benchmarks)}, storage {self.storage}"]
        for t in self.trials:
            axes = ", ".join(f"{k}={_short(v)}" for k, v in t.axes.items() if v is not None and k != "model")
            lines.append(f"  {t.trial_id}  {axes}  steps={t.config.optim.max_steps}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]" if len(value) <= 6 else f"[{len(value)} languages]"
    return str(value)


ENCODER_KEYS = tuple(f.name for f in fields(EncoderConfig))
# A model entry: encoder settings, its label, and what a model of its size needs: its own
# per-trial resources (workers, CPUs and GPUs per worker) and training settings (levers such as
# loss.chunk_size or run.sharding), so one study spans 0.1B to 30B parameters.
MODEL_ENTRY_KEYS = ENCODER_KEYS + ("size", "resources", "train")
TRIAL_RESOURCES = ("workers_per_trial", "cpus_per_worker", "gpus_per_worker")
MODEL_TRAIN_SECTIONS = ("encoder", "loss", "optim", "run")  # the sampler and data stay the study's: one recipe


def _models(spec: Any) -> list[dict[str, Any]]:
    """``{ladder: {family, sizes}}`` or a list of model names or encoder settings (plus ``size``)."""
    if isinstance(spec, dict) and "ladder" in spec:
        _strict(spec, ("ladder",), "axes.model")
        ladder = _strict(spec["ladder"], ("family", "sizes"), "axes.model.ladder")
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
            if isinstance(item, str) and ":" not in item and "=" in item:
                raise StudyConfigError(f"axes.model entry {item!r} looks like the rest of a model name split by YAML at "
                                       "a comma; quote the name: model: ['tiny:hidden=32,layers=2']")
            entry = {"model": item} if isinstance(item, str) else dict(_strict(item, MODEL_ENTRY_KEYS, "axes.model[]"))
            if "model" not in entry:
                raise StudyConfigError(f"axes.model entry {item!r} has no 'model'")
            entry.setdefault("size", entry["model"] + (f" ({entry['num_layers']} layers)" if entry.get("num_layers") else ""))
            out.append(entry)
        return out
    raise StudyConfigError("axes.model must be {ladder: {family, sizes}} or a non-empty list of models "
                           "(quote a name with commas: 'tiny:hidden=32,layers=2')")


def _check_codes(codes: Any, where: str = "axes.languages") -> None:
    bad = [c for c in codes if isinstance(c, bool)]
    if bad:
        raise StudyConfigError(f"{where}: a language code was read as a boolean (YAML reads no/yes/on/off "
                               "as booleans); quote it, e.g. 'no', or use nb for Norwegian Bokmal")


def _language_sets(spec: Any) -> list[tuple[str, ...] | None]:
    """Explicit lists, or ``{ordering: [...] | name, counts: [k, ...]}`` nested first-k subsets
    (named orderings: ``scaling.languages.NAMED_ORDERINGS``, up to all 205 FLORES-200 varieties)."""
    if isinstance(spec, dict):
        _strict(spec, ("ordering", "counts"), "axes.languages")
        if not isinstance(spec.get("ordering"), str):
            _check_codes(spec.get("ordering") or [])
    elif isinstance(spec, list):
        for item in spec:
            _check_codes(item if isinstance(item, list) else [item])
    if spec is None:
        return [None]  # every language of the corpus
    if isinstance(spec, dict):
        try:
            named = spec["ordering"]
            ordering = named_ordering(named) if isinstance(named, str) else \
                LanguageOrdering(tuple(named), name="axes.languages.ordering")
            counts = spec["counts"]
            if not isinstance(counts, list) or not counts or any(isinstance(k, bool) or not isinstance(k, int) for k in counts):
                raise StudyConfigError(f"axes.languages.counts should be a list of integers, not {counts!r}")
            too_many = [k for k in counts if not 1 <= k <= len(ordering.languages)]
            if too_many:
                raise StudyConfigError(f"axes.languages.counts {too_many}: the ordering "
                                       f"({named if isinstance(named, str) else 'the list in axes.languages.ordering'}) "
                                       f"has {len(ordering.languages)} languages; choose counts within "
                                       f"1..{len(ordering.languages)}")
            return [ordering.first(k) for k in counts]
        except KeyError as exc:
            raise StudyConfigError(f"axes.languages needs 'ordering' and 'counts' (missing {exc})") from None
        except StudyConfigError:
            raise
        except ValueError as exc:
            raise StudyConfigError(f"axes.languages: {exc}") from None
    if isinstance(spec, list) and spec and all(isinstance(s, list) for s in spec):
        try:
            return [tuple(canonical_many(s)) for s in spec]
        except ValueError as exc:
            raise StudyConfigError(f"axes.languages: {exc}") from None
    raise StudyConfigError("axes.languages must be a list of language lists or {ordering: [...], counts: [...]}")


def _train_languages(train: dict) -> tuple[str, ...] | None:
    """``train.data.languages``: the training languages of every trial of a study without a
    languages axis (None: every language of the training data)."""
    languages = (train.get("data") or {}).get("languages")
    if languages is None:
        return None
    if not isinstance(languages, list) or not languages:
        raise StudyConfigError(f"train.data.languages should be a non-empty list of language codes, not {languages!r}")
    _check_codes(languages)
    try:
        return tuple(canonical_many(languages))
    except ValueError as exc:
        raise StudyConfigError(f"train.data.languages: {exc}") from None


def _strategies(spec: Any) -> list[dict[str, Any]]:
    """Entries ``{name, **params}``; each parameter is checked against the registered strategy."""
    out = []
    for item in spec or ["hybrid"]:
        entry = {"name": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        if entry is None or "name" not in entry:
            raise StudyConfigError(f"axes.strategy entry {item!r} should be a name or {{name: ..., <parameters>}}")
        try:
            strategy = get_strategy(entry["name"])
            strategy.make_params({k: v for k, v in entry.items() if k != "name"}, where="axes.strategy.")
        except SamplerConfigError as exc:
            message = str(exc)
            if message.startswith("unknown sampler.strategy"):
                message = f"axes.strategy {entry['name']!r} is unknown" + message.split(repr(entry['name']), 1)[1]
            raise StudyConfigError(message) from None
        out.append(entry)
    return out


def load_study(path: str | Path, overrides: list[str] | None = None) -> Study:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise StudyConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise StudyConfigError(f"{path}: a study is a mapping of sections {list(SECTIONS)}, found a "
                               f"{type(raw).__name__} at the top level")
    return build_study(raw, overrides or [], origin=str(path))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``--set key=value``: dotted keys into the YAML tree (values parsed as YAML)."""
    raw = json.loads(json.dumps(raw))
    for item in overrides:
        try:
            key, value = parse_override(item)
        except ValueError as exc:
            raise StudyConfigError(str(exc)) from None
        first = key.split(".")[0]
        if first not in SECTIONS:
            raise StudyConfigError(f"override {key!r}: unknown section; sections are {list(SECTIONS)}")
        _set(raw, key, value, f"override {key!r}")
    return raw


def _set(raw: dict, dotted: str, value: Any, what: str = "axes") -> None:
    set_dotted(raw, dotted, value, what, StudyConfigError)


def _benchmark(entry: Any) -> str:
    """A source string, or ``{source, languages}``: the benchmark cut to those languages
    (written ``source?languages=code,...``, the form the data layer reads)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        _strict(entry, ("source", "languages"), "benchmarks[]")
        source, languages = entry.get("source"), entry.get("languages")
        if not isinstance(source, str) or not isinstance(languages, list) or not languages:
            raise StudyConfigError(f"benchmarks entry {entry!r} needs a source name and a non-empty languages list")
        _check_codes(languages, f"benchmarks[{source}].languages")
        return with_language_subset(source, [str(code) for code in languages])
    raise StudyConfigError(f"benchmarks entries are source names or {{source, languages}}, not {entry!r}")


def _merge(base: dict, extra: dict, where: str) -> dict:
    """``base`` with ``extra``'s sections merged in (a model entry's ``train`` over the study's)."""
    if not isinstance(extra, dict):
        raise StudyConfigError(f"{where} should be a mapping of training sections, found {type(extra).__name__}")
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _model_resources(study: Resources, model: dict[str, Any]) -> Resources:
    """The study's resources with a model entry's own workers, CPUs and GPUs per worker."""
    own = _strict(model.get("resources"), TRIAL_RESOURCES, f"axes.model[{model['model']}].resources")
    if not own:
        return study
    try:
        return Resources.from_dict({**asdict(study), **own})
    except StudyConfigError as exc:
        raise StudyConfigError(f"axes.model[{model['model']}]: {exc}") from None


def _eval_config(raw: Any) -> EvalConfig:
    values = _strict(raw, EVAL_KEYS, "eval")
    try:
        return EvalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(str(exc)) from None


def _zero_shot(spec: Any) -> tuple[str, tuple[str, ...]]:
    """``drop`` / ``refuse`` (overlapping items), or ``{items: drop, languages: [...]}``, which also
    declares evaluation languages that no trial may train on (checked per trial before Ray)."""
    if isinstance(spec, dict):
        _strict(spec, ("items", "languages"), "zero_shot")
        items, languages = spec.get("items", "drop"), spec.get("languages") or []
        if not isinstance(languages, list):
            raise StudyConfigError(f"zero_shot.languages should be a list of language codes, not {languages!r}")
        _check_codes(languages)
        try:
            languages = tuple(canonical_many(languages))
        except ValueError as exc:
            raise StudyConfigError(f"zero_shot.languages: {exc}") from None
    else:
        items, languages = spec, ()
    if items not in ("drop", "refuse"):
        where = "zero_shot.items" if isinstance(spec, dict) else "zero_shot"
        raise StudyConfigError(f"{where} must be 'drop' or 'refuse', not {items!r}")
    return items, languages


def build_study(raw: dict, overrides: list[str], origin: str = "study") -> Study:
    raw = apply_overrides(raw, overrides)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        close = [c for c in (closest(u, SECTIONS) for u in unknown) if c]
        raise StudyConfigError(f"{origin}: unknown section(s) {unknown}" + (f" (did you mean {close}?)" if close else "")
                               + f"; a study has {list(SECTIONS)}")
    meta = _strict(raw.get("study"), ("name", "description"), "study")
    name = str(meta.get("name") or Path(origin).stem)
    axes = _strict(raw.get("axes"), AXES, "axes")
    train = raw.get("train") or {}
    if not isinstance(train, dict):
        raise StudyConfigError(f"train should be a mapping, found {type(train).__name__}")
    resources = Resources.from_dict(raw.get("resources"))
    zero_shot, zero_shot_languages = _zero_shot(raw.get("zero_shot", "drop"))
    benchmarks = raw.get("benchmarks") or ()
    if not benchmarks:
        raise StudyConfigError("benchmarks: list at least one evaluation benchmark")
    if not isinstance(benchmarks, list):
        raise StudyConfigError(f"benchmarks should be a list of source names, not {benchmarks!r}")
    benchmarks = [_benchmark(b) for b in benchmarks]
    if any(b.startswith("mteb:") for b in benchmarks):  # task names are in mteb's metadata: checked offline
        from scaling.eval.mteb_tasks import MtebTaskError, check_mteb_sources

        try:
            check_mteb_sources(benchmarks)
        except MtebTaskError as exc:
            raise StudyConfigError(str(exc)) from None
    eval_config = _eval_config(raw.get("eval"))
    params = axes.get("params") or {}
    if not isinstance(params, dict) or any(not isinstance(v, list) or not v for v in params.values()):
        raise StudyConfigError("axes.params must map dotted training settings to non-empty lists of values")

    study_settings = {"benchmarks": list(benchmarks), "eval": eval_identity(asdict(eval_config)),
                      "zero_shot": {"items": zero_shot, "languages": list(zero_shot_languages)} if zero_shot_languages
                      else zero_shot}
    base_model = (train.get("encoder") or {}).get("model", EncoderConfig.model)
    strategies = _strategies(axes.get("strategy"))
    sampler_base = dict(train.get("sampler") or {})
    axis_params = list(dict.fromkeys(p for s in strategies for p in get_strategy(s["name"]).axis_params))
    for key in sampler_base:  # each value checked even where an axis entry overrides it
        for s in strategies:
            if key in get_strategy(s["name"]).param_names():
                try:
                    get_strategy(s["name"]).make_params({key: sampler_base[key]}, where="train.sampler.")
                except SamplerConfigError as exc:
                    raise StudyConfigError(str(exc)) from None
        if key not in SAMPLER_SHARED and key != "strategy" and not any(
                key in get_strategy(s["name"]).param_names() for s in strategies):
            names = sorted({p for s in STRATEGIES.values() for p in s.param_names()} | set(SAMPLER_SHARED))
            close = closest(key, names)
            raise StudyConfigError(f"train.sampler.{key} is not a parameter of any strategy in this study "
                                   f"({[s['name'] for s in strategies]})" + (f"; did you mean {close!r}?" if close else ""))
    if axes.get("languages") is not None and (train.get("data") or {}).get("languages") is not None:
        raise StudyConfigError("axes.languages and train.data.languages both set the training languages; keep the "
                               "axis (it sets data.languages per trial) or the fixed list, not both")
    grids = [("model", _models(axes.get("model") or [{"model": base_model}])),
             ("languages", _language_sets(axes.get("languages")) if axes.get("languages") is not None
              else [_train_languages(train)]),
             ("strategy", strategies),
             ("seed", list(axes.get("seed") or [sampler_base.get("seed", 0)]))]
    grids += [(f"params.{k}", list(v)) for k, v in params.items()]
    trials = []
    for combo in itertools.product(*[values for _, values in grids]):
        chosen = dict(zip([n for n, _ in grids], combo))
        model, strategy, languages = chosen["model"], chosen["strategy"], chosen["languages"]
        spec = get_strategy(strategy["name"])
        trial_raw = copy.deepcopy(train)
        encoder = {k: v for k, v in model.items() if k not in ("size", "resources", "train")}
        own_train = _strict(model.get("train"), MODEL_TRAIN_SECTIONS, f"axes.model[{model['model']}].train")
        trial_raw = _merge(trial_raw, own_train, f"axes.model[{model['model']}].train")
        trial_raw["encoder"] = {**(trial_raw.get("encoder") or {}), **encoder}
        trial_resources = _model_resources(resources, model)
        trial_raw["sampler"] = {**{k: v for k, v in sampler_base.items() if k in SAMPLER_SHARED
                                   or k in spec.param_names()},
                                **{k: v for k, v in strategy.items() if k != "name"},
                                "strategy": spec.name, "seed": chosen["seed"]}
        _set(trial_raw, "data.languages", list(languages) if languages else None)
        for key, value in (("num_workers", trial_resources.workers_per_trial),
                           ("cpus_per_worker", trial_resources.cpus_per_worker),
                           ("gpus_per_worker", trial_resources.gpus_per_worker)):
            _set(trial_raw, f"run.{key}", value)
        for key, value in chosen.items():
            if key.startswith("params."):
                _set(trial_raw, key[len("params."):], value)
        try:
            config = TrainConfig.from_dict(trial_raw)
        except ValueError as exc:
            raise StudyConfigError(f"train: {exc}") from None
        extra = {f"encoder.{k}": v for k, v in encoder.items() if k not in ("model", "num_layers")}
        axes_values = {"model": model["model"], "size": model["size"], "num_layers": model.get("num_layers"),
                       "strategy": spec.name, **{p: getattr(config.sampler.params, p, None) for p in axis_params},
                       "recipe": config.sampler.recipe,
                       "languages": list(languages) if languages else None,
                       "num_languages": len(languages) if languages else None,
                       "seed": chosen["seed"], **extra, **{k: v for k, v in chosen.items() if k.startswith("params.")}}
        identity = {"axes": {k: v for k, v in axes_values.items() if k != "recipe"},
                    "settings": settings_identity(config.to_dict()), **study_settings}
        trials.append(Trial(trial_id(identity), axes_values, config, identity, trial_resources))
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):
        raise StudyConfigError("two trials have the same axis values; remove the duplicate axis entries")
    keep_models = raw.get("keep_models", True)
    if not isinstance(keep_models, bool):
        raise StudyConfigError(f"keep_models must be true or false, not {keep_models!r}")
    storage = raw.get("storage") or "results"
    if not isinstance(storage, str):
        raise StudyConfigError(f"storage should be a folder or a URI, not {storage!r}")
    return Study(name, str(meta.get("description", "")), tuple(trials), tuple(benchmarks), zero_shot, resources,
                 storage, keep_models, eval_config, raw, zero_shot_languages)
