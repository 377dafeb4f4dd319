"""Figures with matplotlib: scaling curves with confidence bands, fitted power laws, training
curves, comparison intervals, the language matrix, per-language bars, quality against the number
of training languages with its breakpoint fit, and bars per language group (resource level).
Each function returns a Figure; ``save`` writes it as PNG and SVG.

Figures are made with ``matplotlib.figure.Figure``, not pyplot: no backend or display is needed on
a cluster or in CI, nothing accumulates in pyplot's registry, and Jupyter still shows a returned
figure inline."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.breakpoint import BreakpointFit
from analysis.curves import as_error
from analysis.fits import PowerLawFit
from scaling.eval.metrics import metric_label
from scaling.files import write_atomic

AXIS_LABELS = {"non_embedding_params": "non-embedding parameters (log scale)",
               "num_languages": "number of training languages", "step": "training step"}


def save(fig: Figure, folder: str | Path, name: str) -> list[Path]:
    """``<folder>/<name>.png`` and ``.svg``, each written to a temporary name and renamed."""
    paths = [Path(folder) / f"{name}.png", Path(folder) / f"{name}.svg"]
    for path in paths:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix[1:], dpi=150, bbox_inches="tight")
        write_atomic(path, buffer.getvalue())
    return paths


def label(name: str) -> str:
    """A metric's label from the one metric spec (``scaling.eval.metrics.METRICS``)."""
    return metric_label(name)


def plot_curve(curve: pd.DataFrame, *, x: str, title: str, ylabel: str, fits: dict | None = None,
               metric: str = "map") -> Figure:
    """One line per ``curve.line`` (means over seeds) with a band for the seed interval.
    ``fits``: per line, a ``PowerLawFit`` of the metric's error (``curves.as_error``), drawn
    dashed; lines whose fit was refused (a ``FitError``) get none."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for line, group in curve.groupby("line", sort=True):
        group = group.sort_values(x)
        xs = group[x].to_numpy(dtype=float)
        (drawn,) = ax.plot(xs, group["mean"], marker="o", label=line)
        if group["ci_low"].notna().any():
            ax.fill_between(xs, group["ci_low"], group["ci_high"], alpha=0.2, color=drawn.get_color(), linewidth=0)
        fit = (fits or {}).get(line)
        if isinstance(fit, PowerLawFit):
            grid = np.geomspace(xs.min(), xs.max(), 100)
            ax.plot(grid, as_error(metric, fit.predict(grid)), linestyle="--", color=drawn.get_color(),
                    label=f"{line}: fit, alpha={fit.alpha:.2f}")
    if x == "non_embedding_params":
        ax.set_xscale("log")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_comparisons(comparisons: pd.DataFrame, *, title: str, label_columns: list[str]) -> Figure:
    """Hybrid minus baseline with its interval, one row per comparison; filled markers where the
    interval excludes zero."""
    rows = comparisons.reset_index(drop=True)
    fig = Figure(figsize=(6.4, 0.45 * len(rows) + 1.2))
    ax = fig.subplots()
    ys = np.arange(len(rows))[::-1]
    low = (rows["diff"] - rows["ci_low"]).fillna(0).clip(lower=0)
    high = (rows["ci_high"] - rows["diff"]).fillna(0).clip(lower=0)
    ax.errorbar(rows["diff"], ys, xerr=[low, high], fmt="none", ecolor="grey", capsize=3)
    for y, (_, r) in zip(ys, rows.iterrows()):
        ax.plot(r["diff"], y, "o", color="tab:blue", markerfacecolor="tab:blue" if r["excludes_zero"] else "white")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [" | ".join(str(r[c]) for c in label_columns) for _, r in rows.iterrows()], fontsize=8)
    ax.set_xlabel("difference (treatment - baseline), mean over paired seeds, 95% CI")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def plot_language_matrix(matrix: pd.DataFrame, *, title: str, metric: str = "map") -> Figure:
    size = max(4.0, 0.45 * len(matrix) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1 if metric != "rank_distance" else None)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    if len(matrix) <= 15:
        for i in range(len(matrix)):
            for j in range(len(matrix.columns)):
                v = matrix.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.5 else "black")
    fig.colorbar(image, ax=ax, label=label(metric))
    ax.set_title(title)
    return fig


def plot_language_bars(scores: pd.DataFrame, *, title: str, metric: str = "map") -> Figure:
    """Per query language, coloured by seen in training / zero-shot / unknown."""
    colours = {True: "tab:blue", False: "tab:orange", None: "tab:grey"}
    names = {True: "seen in training", False: "zero-shot", None: "unknown"}
    fig = Figure(figsize=(max(5.0, 0.35 * len(scores) + 2), 3.8))
    ax = fig.subplots()
    seen = [None if pd.isna(s) else bool(s) for s in scores["seen"]]
    ax.bar(range(len(scores)), scores["mean"], color=[colours[s] for s in seen],
           yerr=scores["std"].fillna(0), capsize=2)
    ax.set_xticks(range(len(scores)), scores["query_lang"], rotation=90)
    ax.set_xlabel("query language")
    ax.set_ylabel(label(metric))
    ax.legend(handles=[Patch(color=colours[f], label=names[f]) for f in dict.fromkeys(seen)], fontsize=8)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def plot_language_breakpoints(curve: pd.DataFrame, fits: dict, *, title: str, ylabel: str) -> Figure:
    """Means over seeds against the number of training languages (log2 axis) with their band, one
    line per ``curve.line``; per line, its fitted broken line (dashed) and, where the kink is
    meaningful, the breakpoint with its interval (dotted line, shaded span)."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for line, group in curve.groupby("line", sort=True):
        group = group.sort_values("num_languages")
        xs = group["num_languages"].to_numpy(dtype=float)
        (drawn,) = ax.plot(xs, group["mean"], marker="o", label=line)
        colour = drawn.get_color()
        if group["ci_low"].notna().any():
            ax.fill_between(xs, group["ci_low"], group["ci_high"], alpha=0.2, color=colour, linewidth=0)
        fit = fits.get(line)
        if isinstance(fit, BreakpointFit):
            grid = np.geomspace(xs.min(), xs.max(), 200)
            verdict = f"break at {fit.breakpoint:.3g}" if fit.meaningful else f"no break (p={fit.p_value:.2g})"
            ax.plot(grid, fit.predict(grid), linestyle="--", color=colour, label=f"{line}: fit, {verdict}")
            if fit.meaningful:
                ax.axvline(fit.breakpoint, color=colour, linestyle=":", linewidth=1)
                ax.axvspan(*fit.breakpoint_ci, color=colour, alpha=0.08, linewidth=0)
    ax.set_xscale("log", base=2)
    counts = sorted(curve["num_languages"].dropna().unique())
    ax.set_xticks(counts, [f"{c:g}" for c in counts])
    ax.minorticks_off()
    ax.set_xlabel("number of training languages (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def plot_group_bars(scores: pd.DataFrame, *, title: str, ylabel: str, order: list[str] | None = None) -> Figure:
    """Grouped bars: one group of bars per ``scores.group`` (in ``order``), one bar per recipe,
    the mean over seeds with its interval; the bar label gives the group's number of languages."""
    groups = order or list(dict.fromkeys(scores["group"]))
    groups = [g for g in groups if g in set(scores["group"])]
    recipes = sorted(scores["recipe"].unique())
    width = 0.8 / max(len(recipes), 1)
    fig = Figure(figsize=(max(5.0, 0.9 * len(groups) * max(1, len(recipes) / 2) + 2), 4.0))
    ax = fig.subplots()
    for i, recipe in enumerate(recipes):
        mine = scores[scores["recipe"] == recipe].set_index("group").reindex(groups)
        xs = np.arange(len(groups)) + (i - (len(recipes) - 1) / 2) * width
        low = (mine["mean"] - mine["ci_low"]).fillna(0).clip(lower=0)
        high = (mine["ci_high"] - mine["mean"]).fillna(0).clip(lower=0)
        ax.bar(xs, mine["mean"], width=width, label=recipe, yerr=[low, high], capsize=2)
    counts = scores.drop_duplicates("group").set_index("group")["n_languages"]
    ax.set_xticks(range(len(groups)), [f"{g}\n({int(counts[g])} lang.)" for g in groups], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
