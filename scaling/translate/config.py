"""The translation job's settings: a YAML file plus ``--set key=value`` overrides, strict keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaling.languages import canonical, canonical_many
from scaling.training.config import _build, parse_override, set_dotted
from scaling.translate.filters import FilterSettings
from scaling.translate.model import ModelSettings


@dataclass(frozen=True)
class RunSettings:
    """Where shards are translated: ``local`` (this process) or ``ray`` (Ray Data actors)."""

    executor: str = "local"
    actors: int = 1  # ray: translator actors (one model copy each)
    gpus_per_actor: float = 1.0  # ray: 0 to run actors on CPUs
    cpus_per_actor: float = 1.0

    def __post_init__(self) -> None:
        if self.executor not in ("local", "ray"):
            raise ValueError(f"setting run.executor must be 'local' or 'ray', got {self.executor!r}")
        if not isinstance(self.actors, int) or self.actors < 1:
            raise ValueError(f"setting run.actors should be a positive integer, got {self.actors!r}")
        if self.gpus_per_actor < 0 or self.cpus_per_actor <= 0:
            raise ValueError("settings run.gpus_per_actor (>= 0) and run.cpus_per_actor (> 0) are out of range")


@dataclass(frozen=True)
class TranslateConfig:
    source: str = "parallel-qa:train"  # any training source string (scaling.data.sources)
    source_language: str = "en"  # the rows that are translated
    target_languages: tuple[str, ...] = ()
    out: str = ""  # output folder: corpus.parquet, manifest.json, shards/
    shard_size: int = 256  # groups per shard (the unit of resumption)
    max_groups: int | None = None  # only the first N groups with a source-language row (small runs)
    include_source: bool = True  # the output also holds the input rows of the translated groups
    seed: int = 0
    data_dir: str | None = None
    model: ModelSettings = field(default_factory=ModelSettings)
    filters: FilterSettings = field(default_factory=FilterSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("setting out is empty: name the output folder (--out DIR or --set out=DIR)")
        if not self.target_languages:
            raise ValueError("setting target_languages is empty: list the languages to translate into, e.g. [de, sw]")
        targets = tuple(canonical_many(self.target_languages))
        src = canonical(self.source_language)
        if src in targets:
            raise ValueError(f"setting target_languages holds the source language {src!r}")
        object.__setattr__(self, "target_languages", targets)
        object.__setattr__(self, "source_language", src)
        if not isinstance(self.shard_size, int) or self.shard_size < 1:
            raise ValueError(f"setting shard_size should be a positive integer, got {self.shard_size!r}")
        if self.max_groups is not None and (not isinstance(self.max_groups, int) or self.max_groups < 1):
            raise ValueError(f"setting max_groups should be a positive integer or null, got {self.max_groups!r}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TranslateConfig":
        return _build(cls, raw, "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target_languages"] = list(self.target_languages)
        return out


def load_config(path: str | Path | None, overrides: list[str] = (), **values: Any) -> TranslateConfig:
    """A config from a YAML file (or defaults), then ``values`` (CLI flags), then ``--set`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a translate config is a mapping of settings")
    for key, value in values.items():
        if value is not None:
            raw[key] = value
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value, f"override {item!r}")
    return TranslateConfig.from_dict(raw)
