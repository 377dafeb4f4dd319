"""A finished (or running) study as tidy pandas DataFrames, in one call.

``load(location)`` reads what ``jobs/sweep.py`` wrote (a local folder or a cloud URI, through
``scaling.store.ResultStore``) into:

* ``metrics``: one row per (trial, benchmark, setting, query language, candidate language,
  metric), with the trial's axes as columns and a ``recipe`` column (the strategy, with alpha for
  hybrid) that names a line on every plot;
* ``trials``: one row per trial: its axes, parameter counts, held-out losses, wall times and
  the languages it trained on;
* ``curves``: the training curves (step, loss, throughput) with the trial's axes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scaling.records import GRID_AXES, HELDOUT_COLUMNS
from scaling.store import ResultStore


def _with_recipe(frame: pd.DataFrame) -> pd.DataFrame:
    """Results record each trial's recipe (the strategy with its parameters, as its registry
    labels it); a study written before that column existed names lines by strategy alone."""
    if "recipe" in frame:
        return frame
    frame = frame.copy()
    frame["recipe"] = frame["strategy"]
    return frame


@dataclass
class StudyResults:
    location: str
    metrics: pd.DataFrame
    trials: pd.DataFrame
    curves: pd.DataFrame
    manifests: dict[str, dict] = field(repr=False)
    study: dict = field(repr=False)  # study.json: the configuration and the whole grid
    left_out: list[str] = field(default_factory=list)  # finished trial folders outside the study's grid

    @property
    def name(self) -> str:
        return str(self.metrics["study"].iloc[0]) if "study" in self.metrics else Path(self.location).name

    def grid_size(self) -> int:
        return len(self.study.get("trials", [])) or len(self.trials)

    def varying(self) -> list[str]:
        """The grid axes that take more than one value in this study (seed excluded)."""
        return [a for a in GRID_AXES if a in self.trials and self.trials[a].astype(str).nunique() > 1]

    def select(self, **filters) -> pd.DataFrame:
        """Metric rows where each column equals the given value (or is in the given list/tuple/set).

        ``results.select(benchmark="xquad-r", setting="multi", metric="map", recipe=["xx", "hybrid a=0.5"])``
        """
        frame = self.metrics
        for column, wanted in filters.items():
            if column not in frame:
                raise KeyError(f"select: no column {column!r}; columns are {sorted(frame.columns)}")
            if isinstance(wanted, (list, tuple, set, frozenset)):
                frame = frame[frame[column].isin(list(wanted))]
            else:
                frame = frame[frame[column] == wanted]
        return frame

    def training_languages(self, trial_id: str) -> list[str] | None:
        """The languages a trial trained on: its manifest's record, else its languages axis, else
        the languages of its training data as study.json records them (None when unknown)."""
        return _training_languages(self.manifests.get(trial_id, {}), self.study)


def _training_languages(manifest: dict, study: dict) -> list[str] | None:
    if manifest.get("training_languages") or manifest.get("languages"):
        return manifest.get("training_languages") or manifest.get("languages")
    sources = manifest.get("config", {}).get("data", {}).get("train")
    for entry in study.get("training_data", []):
        if sources is not None and list(entry.get("sources", [])) == list(sources):
            return entry.get("languages")
    return None


def load(location: str | Path | ResultStore) -> StudyResults:
    """Read a study's finished trials (a folder, an ``s3://`` URI, or a ``ResultStore``)."""
    store = location if isinstance(location, ResultStore) else ResultStore(location)
    study = store.read_json("study.json") if store.exists("study.json") else {}
    finished = store.finished()
    grid = {t["trial_id"] for t in study.get("trials", [])}
    ids = [t for t in finished if t in grid] if grid else finished  # only the study's current grid
    left_out = sorted(set(finished) - set(ids))
    if not ids and finished:
        raise FileNotFoundError(f"{store.location}: none of its {len(finished)} finished trials is in the grid that "
                                "study.json records")
    metrics = _with_recipe(store.trial_tables("metrics.parquet", ids).to_pandas())
    curves_table = store.trial_tables("curve.parquet", ids)
    manifests = store.manifests(ids)

    axis_columns = [c for c in metrics.columns if c not in ("benchmark", "setting", "query_lang", "candidate_lang",
                                                           "metric", "value")]
    trials = metrics[axis_columns].drop_duplicates("trial_id").reset_index(drop=True)
    extra = []
    for trial_id in trials["trial_id"]:
        m = manifests.get(trial_id, {})
        final = m.get("final_metrics", {})
        extra.append({"trial_id": trial_id, **{c: final.get(c) for c in HELDOUT_COLUMNS},
                      "train_s": m.get("wall_s", {}).get("train"), "evaluate_s": m.get("wall_s", {}).get("evaluate"),
                      "training_languages": json.dumps(_training_languages(m, study))})
    trials = trials.merge(pd.DataFrame(extra), on="trial_id", how="left")
    # num_languages is empty where a study trained on every language of its corpus: count them
    counts = {t: len(json.loads(v)) for t, v in zip(trials["trial_id"], trials["training_languages"]) if v != "null"}
    for frame in (metrics, trials):
        if "num_languages" in frame:
            frame["num_languages"] = pd.to_numeric(frame["num_languages"]).fillna(frame["trial_id"].map(counts))
    curves = curves_table.to_pandas()
    if len(curves):
        curves = curves.merge(trials[[c for c in trials.columns if c in axis_columns]], on="trial_id", how="left")
    return StudyResults(str(store.location), metrics, trials, curves, manifests, study, left_out)
