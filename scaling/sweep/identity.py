"""What makes a study the same study: every trial's axes and resolved settings, the benchmarks,
the evaluation options and the content of the data. ``--resume`` continues a study only when
this is unchanged, and otherwise says, setting by setting, what changed."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

# Where, on what and how a run is placed, not what it computes (a sharded run equals the
# replicated one; faiss and torch rank alike; an actor pool encodes as one process): excluded
# from a trial's identity, so changing one of them resumes the same trials.
LOCATION_SETTINGS = ("run.name", "run.storage_path", "data.data_dir", "run.cpus_per_worker", "run.gpus_per_worker",
                     "run.torch_threads", "run.max_failures", "run.sharding")
EVAL_LOCATION_SETTINGS = ("memory_mb", "query_chunk", "device", "backend", "encoder", "encoder_actors")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def settings_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's resolved training settings, flattened, without where they run."""
    return {k: v for k, v in flatten(config).items() if k not in LOCATION_SETTINGS}


def eval_identity(eval_settings: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation options that change its numbers (metrics, cut-offs, lengths), not where it runs."""
    return {k: v for k, v in eval_settings.items() if k not in EVAL_LOCATION_SETTINGS}


def fingerprint(identity: Mapping[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(identity, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _values(values: set[str]) -> str:
    return ", ".join(sorted(values)) if values else "(absent)"


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 12) -> list[str]:
    """Readable differences between two study identities (``old`` recorded, ``new`` requested)."""
    lines = []
    for part in ("benchmarks", "eval", "zero_shot", "data"):
        if old.get(part) != new.get(part):
            a, b = flatten({part: old.get(part)}) if isinstance(old.get(part), Mapping) else {part: old.get(part)}, \
                flatten({part: new.get(part)}) if isinstance(new.get(part), Mapping) else {part: new.get(part)}
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    lines.append(f"{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    old_trials, new_trials = old.get("trials", {}), new.get("trials", {})
    settings_old = {k: {json.dumps(t["settings"].get(k), default=str) for t in old_trials.values()}
                    for t in old_trials.values() for k in t["settings"]}
    settings_new = {k: {json.dumps(t["settings"].get(k), default=str) for t in new_trials.values()}
                    for t in new_trials.values() for k in t["settings"]}
    for key in sorted(set(settings_old) | set(settings_new)):
        a, b = settings_old.get(key, set()), settings_new.get(key, set())
        if a != b:
            lines.append(f"train {key}: {_values(a)} -> {_values(b)}")
    only_old = sorted(set(old_trials) - set(new_trials))
    only_new = sorted(set(new_trials) - set(old_trials))
    if only_old or only_new:
        lines.append(f"grid: {len(only_old)} trial(s) only in the recorded study, {len(only_new)} only in this "
                     "configuration")
    if not lines:
        lines.append("the recorded study has no fingerprint to compare (it was written by an older version)")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
