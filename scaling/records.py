"""The result contract: what one finished trial records, written by the sweep and the synthetic
studies alike and read by ``analysis``. Column names live here and nowhere else.

* ``metrics.parquet``: one row per metric value; the trial's identity (``TRIAL_COLUMNS``), its
  axes (one typed column each, the same type in every trial of a study), its parameter counts,
  then ``METRIC_COLUMNS``;
* ``curve.parquet``: the training curve, one row per report (step, loss, throughput, and the
  held-out losses where recorded);
* ``manifest.json``: everything else (configuration, data, versions), written last.

This module imports nothing of training or evaluation: analysis may depend on it alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa

HELDOUT_KINDS = ("xx", "xy")  # batch kinds of the held-out contrastive loss


def heldout_column(kind: str) -> str:
    return f"heldout_loss_{kind}"


HELDOUT_COLUMNS = tuple(heldout_column(k) for k in HELDOUT_KINDS)
TRIAL_COLUMNS = ("study", "trial_id")
PARAMETER_COLUMNS = {"non_embedding_params": "non_embedding", "total_params": "total"}  # column -> count name
METRIC_COLUMNS = ("benchmark", "setting", "query_lang", "candidate_lang", "metric", "value")
METRIC_SCHEMA = pa.schema([(c, pa.float64() if c == "value" else pa.string()) for c in METRIC_COLUMNS])
GRID_AXES = ("size", "num_layers", "recipe", "num_languages", "languages")  # a trial's place in the grid, seed aside
IDENTITY_EXCLUDED = ("recipe",)  # derived from other axes: not part of a trial's identity


def trial_id(identity: Mapping[str, Any]) -> str:
    """A trial's id: a hash of what identifies it (a study's trials: their axes and every resolved
    setting, ``scaling.sweep.study``), whatever order the grid is expanded in."""
    kept = {k: v for k, v in identity.items() if k not in IDENTITY_EXCLUDED}
    if isinstance(kept.get("axes"), Mapping):
        kept["axes"] = {k: v for k, v in kept["axes"].items() if k not in IDENTITY_EXCLUDED}
    return hashlib.blake2b(json.dumps(kept, sort_keys=True, default=str).encode(), digest_size=4).hexdigest()


def axis_types(all_axes: Sequence[Mapping[str, Any]]) -> dict[str, pa.DataType]:
    """One Arrow type per axis across a whole study, so every trial's file has the same schema
    (an axis unset in some trials, like alpha outside hybrid, is a null of that type)."""
    names = list(dict.fromkeys(k for axes in all_axes for k in axes))
    types = {}
    for key in names:
        values = [a.get(key) for a in all_axes if a.get(key) is not None]
        if values and all(isinstance(v, bool) for v in values):
            types[key] = pa.bool_()
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            types[key] = pa.int64()
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            types[key] = pa.float64()
        else:
            types[key] = pa.string()  # text, or lists as JSON
    return types


def column_name(axis: str) -> str:
    return axis.replace(".", "_")


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


@dataclass
class TrialRecord:
    """One finished trial, ready to be written by ``ResultStore.write_record``."""

    study: str
    trial_id: str
    axes: dict[str, Any]
    parameters: dict[str, int]  # total, non_embedding, trainable (and more where a family counts more)
    metrics: Sequence[Mapping[str, Any]]  # rows with METRIC_COLUMNS
    curve: Sequence[Mapping[str, Any]] = ()  # training-curve records
    final: dict[str, Any] = field(default_factory=dict)  # final training metrics (loss, held-out losses)
    wall_s: dict[str, float] = field(default_factory=dict)  # "train", "evaluate"
    manifest_extra: dict[str, Any] = field(default_factory=dict)  # configuration, data, versions...

    def metrics_table(self, types: Mapping[str, pa.DataType]) -> pa.Table:
        columns: dict[str, tuple[Any, pa.DataType]] = {"study": (self.study, pa.string()),
                                                      "trial_id": (self.trial_id, pa.string())}
        for axis, value in self.axes.items():
            columns[column_name(axis)] = (_cell(value), types.get(axis, pa.string()))
        for column, count in PARAMETER_COLUMNS.items():
            columns[column] = (self.parameters[count], pa.int64())
        rows = pa.Table.from_pylist([{c: r[c] for c in METRIC_COLUMNS} for r in self.metrics], schema=METRIC_SCHEMA)
        for name, (value, kind) in reversed(list(columns.items())):
            rows = rows.add_column(0, pa.field(name, kind), pa.array([value] * len(rows), type=kind))
        return rows

    def curve_table(self) -> pa.Table:
        return pa.Table.from_pylist([{"trial_id": self.trial_id, **point} for point in self.curve])

    def manifest(self) -> dict[str, Any]:
        """Credentials in any URI are masked (``scaling.secrets``): a manifest never holds a secret."""
        from scaling.secrets import redact

        return redact({"trial_id": self.trial_id, "axes": self.axes, "parameters": self.parameters,
                       "final_metrics": self.final, "wall_s": self.wall_s, **self.manifest_extra})


def metric_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows from objects with the METRIC_COLUMNS as attributes (evaluation's ``MetricRecord``)."""
    return [{c: getattr(r, c) for c in METRIC_COLUMNS} for r in records]
