"""The typed configuration of one training run, validated before any Ray worker starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from scaling.data.mixing import SourceSpec, as_spec, parse_entries, source_weights
from scaling.models.encoder import EncoderConfig
from scaling.names import closest
from scaling.samplers import SamplerConfig
from scaling.training.loss import LossConfig
from scaling.training.sharding import SHARDINGS


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_steps: int = 10
    max_steps: int = 100
    grad_clip: float = 1.0
    fused: bool = True  # fused AdamW kernel (CPU and GPU): a third of the optimizer step's time on CPU

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"optim.max_steps must be >= 1, not {self.max_steps}")
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, not {self.lr}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"optim.warmup_steps must be in [0, max_steps={self.max_steps}], not {self.warmup_steps}")


@dataclass(frozen=True)
class DataConfig:
    # source strings (scaling.data.sources) or {source, weight, options} entries (scaling.data.mixing)
    train: tuple[str | SourceSpec, ...] = ("parallel-qa:train",)
    languages: tuple[str, ...] | None = None  # training languages; None: all in the corpus
    heldout: str | None = "parallel-qa:eval"  # pairs for the held-out contrastive loss
    data_dir: str | None = None  # default: $SCALING_DATA_DIR
    passage: str = "sentence"
    exclude_overlap_with: tuple[str, ...] = ()  # benchmarks whose items are dropped from training

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", parse_entries(self.train, "data.train"))

    @property
    def sources(self) -> tuple[SourceSpec, ...]:
        return tuple(as_spec(e) for e in self.train)

    @property
    def labels(self) -> tuple[str, ...]:
        """The training sources as results name them (plain strings for unweighted entries)."""
        return tuple(s.label for s in self.sources)

    def source_weights(self) -> dict[str, float] | None:
        return source_weights(self.train)


@dataclass(frozen=True)
class RunConfig:
    name: str = "train"
    storage_path: str = "results"
    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # fractional values share a GPU between workers
    max_failures: int = 1
    report_every: int = 10
    checkpoint_every: int = 50
    heldout_steps: int = 4  # batches of the held-out loss
    heldout_every: int = 0  # also record the held-out loss in the curve every N steps (0: only at the end)
    fail_at_step: int | None = None  # testing: fail once at this step to exercise resume
    fail_by: str = "raise"  # how: "raise" an error on every worker, or "kill" the last worker's process
    torch_threads: int | None = None  # per worker; Ray otherwise gives a worker as many as its CPUs
    compile: bool = False  # torch.compile the backbone (dynamic shapes)
    sharding: str = "none"  # "fsdp": FSDP2 shards weights, gradients and optimizer states over the workers

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"run.num_workers must be >= 1, not {self.num_workers}")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ValueError(f"run.cpus_per_worker must be > 0 and run.gpus_per_worker >= 0, not "
                             f"{self.cpus_per_worker} and {self.gpus_per_worker}")
        if self.report_every < 1 or self.checkpoint_every < 1:
            raise ValueError("run.report_every and run.checkpoint_every must be >= 1")
        if self.fail_by not in ("raise", "kill"):
            raise ValueError(f"run.fail_by must be 'raise' or 'kill', not {self.fail_by!r}")
        if self.sharding not in SHARDINGS:
            raise ValueError(f"run.sharding must be one of {list(SHARDINGS)}, not {self.sharding!r}")
        if self.sharding == "fsdp" and self.num_workers < 2:
            raise ValueError(f"run.sharding: fsdp shards the model over the workers, but run.num_workers is "
                             f"{self.num_workers}; set run.num_workers >= 2 or run.sharding: none")
        if self.heldout_every < 0 or self.heldout_every % self.report_every:
            raise ValueError(f"run.heldout_every ({self.heldout_every}) must be 0 or a multiple of run.report_every "
                             f"({self.report_every}): the held-out loss is recorded with the curve's points")


@dataclass(frozen=True)
class TrainConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        from scaling.models.precision import check_device

        check_device(self.encoder.dtype, self.run.gpus_per_worker)  # fp16 without a GPU, before Ray

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _section_dict(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        return _build(cls, raw, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(yaml.safe_load(fh) or {})

    def with_values(self, values: dict[str, Any]) -> "TrainConfig":
        """A copy with settings replaced by dotted name, e.g. ``{"optim.max_steps": 20}``.

        A new ``sampler.strategy`` starts from that strategy's default parameters; a sampler
        parameter is checked against the strategy it ends up with.
        """
        raw = self.to_dict()
        new_strategy = values.get("sampler.strategy", self.sampler.strategy)
        if new_strategy != self.sampler.strategy:
            raw["sampler"] = {k: v for k, v in raw["sampler"].items() if k in SAMPLER_SHARED}
        for key, value in values.items():
            *path, last = key.split(".")
            node = raw
            for part in path:
                if not isinstance(node.get(part), dict):
                    raise ValueError(f"unknown setting {key!r}")
                node = node[part]
            if last not in node and path != ["sampler"]:  # the sampler section checks its own names
                raise ValueError(f"unknown setting {key!r}")
            node[last] = value
        return TrainConfig.from_dict(raw)

    def with_overrides(self, overrides: list[str]) -> "TrainConfig":
        """``section.field=value`` strings (values parsed as YAML), e.g. ``optim.max_steps=20``."""
        return self.with_values(dict(parse_override(item) for item in overrides))


def parse_override(item: str) -> tuple[str, Any]:
    """``--set`` syntax, shared by jobs/train.py and jobs/sweep.py: ``a.b=value``, value as YAML."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"override {item!r} is not key=value")
    return key, yaml.safe_load(value)


def set_dotted(raw: dict, dotted: str, value: Any, what: str, error: type[Exception] = ValueError) -> None:
    """Set ``a.b.c`` in a nested mapping, creating sections on the way; a part that is a value, not
    a section, is ``error`` naming ``what``."""
    *path, last = dotted.split(".")
    node = raw
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise error(f"{what}: {part!r} of {dotted!r} is not a section")
    node[last] = value


def _section_dict(section: Any) -> dict[str, Any]:
    return section.to_dict() if hasattr(section, "to_dict") else asdict(section)


SAMPLER_SHARED = ("strategy", "batch_size", "seed", "steps_per_epoch")


def _coerce(value: Any, annotation: str, setting: str) -> Any:
    """Numbers written as YAML strings (``3e-5`` is a string in YAML 1.1) become numbers;
    a boolean setting takes only true or false (the string 'flase' is not true)."""
    if annotation.startswith("bool") and value is not None and not isinstance(value, bool):
        raise ValueError(f"setting {setting} should be true or false, got {value!r}")
    if annotation.startswith("tuple") and isinstance(value, str):
        raise ValueError(f"setting {setting} should be a list, got the text {value!r}; write [{value}]")
    if value is None or not isinstance(value, str):
        if isinstance(value, bool) and annotation.startswith(("int", "float")):
            raise ValueError(f"setting {setting} should be a number, got {value!r}")
        if isinstance(value, float) and annotation.startswith("int"):
            if not value.is_integer():
                raise ValueError(f"setting {setting} should be an integer, got {value!r}")
            return int(value)
        return value
    for kind, convert in (("float", float), ("int", int)):
        if annotation.startswith(kind):
            try:
                return convert(value)
            except ValueError:
                raise ValueError(f"setting {setting} should be {'a number' if kind == 'float' else 'an integer'}, "
                                 f"got {value!r}") from None
    return value


def _build(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ValueError(f"setting {where or 'top level'} should be a mapping, found {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        close = [c for c in (closest(u, known) for u in unknown) if c]
        raise ValueError(f"unknown setting(s) {[f'{where}{u}' for u in unknown]}"
                         + (f" (did you mean {', '.join(where + c for c in close)}?)" if close else "")
                         + f"; {where or 'top level'} accepts {sorted(known)}")
    kwargs = {}
    for name, value in raw.items():
        factory = known[name].default_factory  # nested sections are dataclasses with factory defaults
        target = factory if callable(factory) and is_dataclass(factory) else None
        if target is not None and hasattr(target, "from_dict"):  # a section that parses itself (sampler)
            if not isinstance(value, dict):
                raise ValueError(f"setting {where}{name} should be a mapping, found {type(value).__name__}")
            kwargs[name] = target.from_dict(value, f"{where}{name}.")
        elif target is not None:
            kwargs[name] = _build(target, value, f"{where}{name}.")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = _coerce(value, str(known[name].type), f"{where}{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad setting in {where or 'top level'}: {exc}") from None
