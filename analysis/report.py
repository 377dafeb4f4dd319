"""``python -m analysis.report RESULTS --out DIR``: a Markdown report of a study.

It holds the study's grid, results tables (means over seeds with 95% intervals), hybrid-vs-baseline
comparisons paired across seeds, the scaling fits with their uncertainty (or why a fit was
refused), and figures (PNG + SVG) under ``DIR/figures``. Sections whose axis the study did not
vary say so instead of drawing a one-point curve.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis import figures
from analysis.aggregate import aggregate_seeds
from analysis.breakpoint import BreakpointFit
from analysis.compare import compare_recipes
from analysis.curves import as_error, heldout_fits, line_rows, metric_curve, size_fits, step_curve
from analysis.fits import FitError, PowerLawFit, slope_beyond
from analysis.joshi2020 import JOSHI_2020
from analysis.language_axis import breakpoint_fits, language_curves, macro_metrics
from analysis.per_language import language_matrix, per_language_scores, seen_unseen_scores
from analysis.resource import cell_columns, resource_group_scores, size_levels
from analysis.results import StudyResults, load
from analysis.views import headline, macro_pairs, with_views
from scaling.files import write_atomic
from scaling.records import HELDOUT_KINDS, heldout_column


@dataclass
class ReportOptions:
    benchmark: str | None = None  # default: every benchmark of the study
    beyond: int | None = None  # language-count slope from this k (default: the smallest count)
    n_bootstrap: int = 1000
    seed: int = 0
    resource_levels: str = "joshi2020"  # or "data-size": by the study's training rows per language
    size_edges: tuple[int, ...] = (1_000, 10_000)  # with data-size: where one level ends and the next begins


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file stem, caption)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def figure(self, fig, out: Path, name: str, caption: str) -> None:
        figures.save(fig, out / "figures", name)
        self.figures.append((name, caption))
        self.add(f"![{caption}](figures/{name}.png)", "", f"*Figure: {caption}* ([SVG](figures/{name}.svg))", "")


def markdown_table(frame: pd.DataFrame) -> list[str]:
    def cell(v) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines + [""]


def _interval(mean: float, low: float, high: float, n: int) -> str:
    if pd.isna(low):
        return f"{mean:.3f} (n={n})"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}] (n={n})"


def _cell_columns(results: StudyResults) -> list[str]:
    cols = ["size"] if "size" in results.metrics else []
    return cols + [c for c in ("num_languages",) if c in results.varying()] + ["recipe"]


def results_table(results: StudyResults, benchmark: str) -> pd.DataFrame:
    frame = results.select(benchmark=benchmark, query_lang="*", candidate_lang="*")
    cells = _cell_columns(results)
    out = None
    for setting, metric in macro_pairs(frame):
        rows = frame[(frame["setting"] == setting) & (frame["metric"] == metric)]
        if rows.empty:
            continue
        agg = aggregate_seeds(rows, by=cells + (["non_embedding_params"] if "size" in cells else []))
        agg[f"{setting} {metric}"] = [_interval(m, lo, hi, n) for m, lo, hi, n in
                                      zip(agg["mean"], agg["ci_low"], agg["ci_high"], agg["n"])]
        agg = agg.drop(columns=["n", "mean", "std", "ci_low", "ci_high"])
        out = agg if out is None else out.merge(agg, how="outer")
    if out is None:
        raise ValueError(f"no macro rows for benchmark {benchmark!r}")
    return out.sort_values([c for c in ("non_embedding_params", "num_languages", "recipe") if c in out])


def build_report(results: StudyResults, out: Path, options: ReportOptions = ReportOptions()) -> Report:
    out.mkdir(parents=True, exist_ok=True)
    results = replace(results, metrics=with_views(results.metrics))  # pivot suites (Tatoeba) in the common shape
    r = Report()
    study_cfg = results.study.get("config", {}).get("study", {})
    manifest = next(iter(results.manifests.values()), {})
    r.add(f"# Study report: {results.name}", "", study_cfg.get("description", "") or "", "",
          f"- results: `{results.location}`",
          f"- trials finished: {len(results.trials)} of {results.grid_size()} in the grid",
          *([f"- left out: {len(results.left_out)} finished trial folder(s) outside the grid study.json records "
             f"({', '.join(results.left_out)})"] if results.left_out else []),
          f"- axes varied: {', '.join(results.varying()) or 'none'}; seeds: "
          f"{', '.join(map(str, sorted(results.trials['seed'].unique())))}",
          f"- benchmarks: {', '.join(sorted(results.metrics['benchmark'].unique()))}",
          f"- library versions: {', '.join(f'{k} {v}' for k, v in manifest.get('versions', {}).items()) or 'not recorded'}",
          f"- git revision: {manifest.get('git_revision') or 'not recorded'}", "",
          "Intervals are 95% bootstrap intervals over seeds (expanded percentile; see `analysis/uncertainty.py`). "
          "A cell with one seed has no interval.", "")

    r.add("## Grid", "")
    grid_cols = [c for c in ("trial_id", "size", "non_embedding_params", "recipe", "num_languages", "seed",
                             heldout_column("xy"), "train_s") if c in results.trials]
    r.add(*markdown_table(results.trials[grid_cols].sort_values([c for c in grid_cols if c != "trial_id"][:4])))

    benchmarks = [options.benchmark] if options.benchmark else sorted(results.metrics["benchmark"].unique())
    for bench in benchmarks:
        _benchmark_sections(r, results, bench, out, options)
    _training_sections(r, results, out, options)

    r.add("## Figures", "")
    r.add(*[f"- `figures/{name}.png` / `.svg`: {caption}" for name, caption in r.figures], "")
    write_atomic(out / "report.md", "\n".join(r.lines) + "\n")
    return r


def _name(pair: tuple[str, str]) -> str:
    """How the text names a (setting, metric): "multilingual mAP", "cross accuracy@1 to en"."""
    setting, metric = pair
    return f"{'multilingual' if setting == 'multi' else setting} {figures.label(metric)}"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def _fit_text(fits: dict) -> list[str]:
    refused = {str(f) for f in fits.values() if not isinstance(f, PowerLawFit)}
    if len(refused) == 1 and len(fits) > 1 and not any(isinstance(f, PowerLawFit) for f in fits.values()):
        return [f"- every line: not fitted: {refused.pop()}", ""]
    return [f"- **{line}**: " + (fit.describe() if isinstance(fit, PowerLawFit) else f"not fitted: {fit}")
            for line, fit in fits.items()] + [""]


def _benchmark_sections(r: Report, results: StudyResults, bench: str, out: Path, options: ReportOptions) -> None:
    slug = _slug(bench)
    r.add(f"## Benchmark `{bench}`", "", "### Results (macro over languages)", "")
    r.add(*markdown_table(results_table(results, bench)))
    head = headline(results.select(benchmark=bench))
    name = _name(head)

    r.add("### Hybrid versus each baseline", "",
          "Difference of means over paired seeds (same size, languages and seed); **bold** where the 95% "
          "interval excludes zero.", "")
    macro = results.select(benchmark=bench, query_lang="*", candidate_lang="*")
    pairs = macro_pairs(macro)
    macro = macro[[(s, m) in pairs for s, m in zip(macro["setting"], macro["metric"])]]
    try:
        cmp = compare_recipes(macro, seed=options.seed)
    except ValueError as exc:
        r.add(f"Not compared: {exc}.", "")
    else:
        cells = [c for c in ("size", "num_languages") if c in results.varying()]
        order = dict(zip(results.trials["size"], results.trials["non_embedding_params"]))
        cmp = cmp.assign(_order=cmp["size"].map(order)).sort_values(
            ["setting", "metric", "baseline", "_order"] + cells[1:]).drop(columns="_order").reset_index(drop=True)
        table = cmp[cells + ["setting", "metric", "treatment", "baseline", "n_pairs"]].copy()
        table["difference [95% CI]"] = [
            (f"**{d:+.3f} [{lo:+.3f}, {hi:+.3f}]**" if ex else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
            if not pd.isna(lo) else f"{d:+.3f} (one seed: no interval)"
            for d, lo, hi, ex in zip(cmp["diff"], cmp["ci_low"], cmp["ci_high"], cmp["excludes_zero"])]
        table["favours"] = cmp["better"]
        r.add(*markdown_table(table))
        lead = cmp[(cmp["setting"] == head[0]) & (cmp["metric"] == head[1])]
        if len(lead):
            r.figure(figures.plot_comparisons(lead, title=f"{bench}: {name}, hybrid minus baseline",
                                              label_columns=cells + ["baseline"]),
                     out, f"{slug}-hybrid-vs-baselines", f"{bench}: hybrid minus each baseline, {name}")

    r.add("### Scaling with model size", "")
    if "size" not in results.varying():
        r.add("One model size in this study: no size curve.", "")
    else:
        for setting, metric in [p for p in (("multi", "map"), ("multi", "rank_distance")) if p in pairs] or [head]:
            try:
                curve, fits = size_fits(results, benchmark=bench, setting=setting, metric=metric,
                                        n_bootstrap=options.n_bootstrap, seed=options.seed)
            except ValueError as exc:
                r.add(f"No {setting} {metric} curve: {exc}.", "")
                continue
            kind = figures.label(metric) if as_error(metric, 1.0) == 1.0 else "1 - " + figures.label(metric)
            r.add(f"Power law `error = E + A / N^alpha` in non-embedding parameters N, error = {kind}:", "",
                  *_fit_text(fits))
            r.figure(figures.plot_curve(curve, x="non_embedding_params", title=f"{bench}: {setting} {figures.label(metric)}",
                                        ylabel=figures.label(metric), fits=fits, metric=metric),
                     out, f"{slug}-{setting}-{metric}-vs-size", f"{bench}: {setting} {metric} against non-embedding "
                     "parameters, one line per recipe, 95% band over seeds, dashed: fitted power law")

    r.add("### Scaling with the number of training languages", "")
    if "num_languages" not in results.varying():
        r.add("One language set in this study: no language curve.", "")
    else:
        _language_sections(r, results, bench, slug, out, options, head)

    r.add("### Per language", "")
    # the largest model, hybrid if the study has it: the configuration a reader cares about most
    largest = results.trials.assign(_hybrid=results.trials["recipe"].str.startswith("hybrid")).sort_values(
        ["non_embedding_params", "_hybrid"]).iloc[-1]
    chosen = results.select(benchmark=bench, size=largest["size"], recipe=largest["recipe"])
    if "num_languages" in chosen and chosen["num_languages"].notna().any():
        chosen = chosen[chosen["num_languages"] == chosen["num_languages"].max()]
    label = f"{largest['size']}, {largest['recipe']}"
    try:
        matrix = language_matrix(chosen)
    except ValueError:
        pass  # a pivot suite (Tatoeba) has no query x candidate matrix of mAP
    else:
        r.figure(figures.plot_language_matrix(matrix, title=f"{bench}: mAP, {label}"), out,
                 f"{slug}-language-matrix", f"{bench}: query-language x candidate-language mAP ({label}; diagonal: "
                 "monolingual)")
    try:
        scores = per_language_scores(results, chosen, setting=head[0], metric=head[1])
        r.figure(figures.plot_language_bars(scores, title=f"{bench}: {name} per query language, {label}",
                                            metric=head[1]),
                 out, f"{slug}-per-language", f"{bench}: {name} per query language ({label}), seen in "
                 "training vs zero-shot")
        if "num_languages" not in results.varying():
            split = seen_unseen_scores(results, chosen, setting=head[0], metric=head[1], seed=options.seed)
            r.add(f"{name[:1].upper() + name[1:]} over the evaluation languages each trial trained on (seen) and over "
                  f"the rest (zero-shot), per trial, then over seeds ({label}):", "", *markdown_table(_group_table(split)))
    except ValueError as exc:
        r.add(f"No per-language view: {exc}.", "")
    _resource_section(r, results, bench, slug, out, options, largest, head)


def _language_sections(r: Report, results: StudyResults, bench: str, slug: str, out: Path,
                       options: ReportOptions, head: tuple[str, str]) -> None:
    """Quality against k per recipe for every macro metric, the slope beyond k, a breakpoint fit
    per recipe and metric, and the seen / zero-shot split against k."""
    curves = language_curves(results, benchmark=bench)
    table = curves.assign(value=[_interval(m, lo, hi, n) for m, lo, hi, n in
                                 zip(curves["mean"], curves["ci_low"], curves["ci_high"], curves["n"])],
                          column=curves["setting"] + " " + curves["metric"])
    table = table.pivot(index=["line", "num_languages"], columns="column", values="value").reset_index()
    r.add("Mean over seeds [95% interval] per recipe and number of training languages, every macro metric:", "",
          *markdown_table(table.rename(columns={"line": "recipe"})))

    k = options.beyond if options.beyond is not None else int(results.trials["num_languages"].min())
    name = _name(head)
    curve = metric_curve(results, x="languages", benchmark=bench, setting=head[0], metric=head[1])
    rows = results.select(benchmark=bench, setting=head[0], metric=head[1], query_lang="*", candidate_lang="*")
    r.add(f"Slope of {name} per added language:", "")
    for line in curve["line"].unique():
        points = line_rows(rows, curve, line)
        try:
            r.add(f"- **{line}**: {slope_beyond(points['num_languages'], points['value'], k=k).describe()}")
        except FitError as exc:
            r.add(f"- **{line}**: not fitted: {exc}")
    r.add("", "Breakpoint: a continuous two-segment line in log2 k fitted by least squares over candidate "
          "breakpoints, slopes per doubling of the languages, residual-bootstrap intervals, and a bootstrap test "
          "of the kink against a straight line (`analysis/breakpoint.py`):", "")
    fit_rows, multi_fits = [], None
    for setting, metric in macro_metrics(results, bench):
        m_curve, fits = breakpoint_fits(results, benchmark=bench, setting=setting, metric=metric,
                                        n_bootstrap=options.n_bootstrap, seed=options.seed)
        if (setting, metric) == head:
            multi_fits = (m_curve, fits)
        for line, fit in fits.items():
            fit_rows.append({"setting metric": f"{setting} {metric}", "recipe": line, **_breakpoint_cells(fit)})
    r.add(*markdown_table(pd.DataFrame(fit_rows)))
    if multi_fits is not None:
        m_curve, fits = multi_fits
        r.figure(figures.plot_language_breakpoints(m_curve, fits, title=f"{bench}: {name}",
                                                   ylabel=figures.label(head[1])),
                 out, f"{slug}-{_slug(head[0] + '-' + head[1])}-vs-languages", f"{bench}: {name} against the number of training "
                 "languages, one line per recipe, 95% band over seeds, dashed: breakpoint fit (dotted: breakpoint, "
                 "shaded: its interval, where the kink is meaningful)")
    try:
        split = seen_unseen_scores(results, results.select(benchmark=bench), setting=head[0], metric=head[1],
                                   seed=options.seed)
    except ValueError as exc:
        r.add(f"No seen / zero-shot split: {exc}.", "")
        return
    r.add(f"{name[:1].upper() + name[1:]} over the evaluation languages each trial trained on (seen) and over the rest "
          "(zero-shot), per trial, then over seeds:", "", *markdown_table(_group_table(split)))
    lines = split.assign(line=split[[c for c in cell_columns(split) if c not in ("num_languages",)]
                                    ].astype(str).agg(", ".join, axis=1) + ", " + split["group"])
    r.figure(figures.plot_curve(lines, x="num_languages", title=f"{bench}: {name}, seen vs zero-shot",
                                ylabel=figures.label(head[1]), metric=head[1]), out, f"{slug}-seen-vs-zero-shot",
             f"{bench}: {name} over seen and over zero-shot evaluation languages against the number of "
             "training languages, 95% band over seeds")


def _breakpoint_cells(fit) -> dict:
    if not isinstance(fit, BreakpointFit):
        return {"breakpoint k [95% CI]": f"not fitted: {fit}", "slope before": "", "slope after": "",
                "p (kink vs line)": "", "verdict": ""}
    verdict = "no meaningful breakpoint"
    if fit.meaningful:
        verdict = f"hurts beyond k = {fit.breakpoint:.3g}" if fit.hurts_after else f"kink at k = {fit.breakpoint:.3g}"
    return {"breakpoint k [95% CI]": f"{fit.breakpoint:.3g} [{fit.breakpoint_ci[0]:.3g}, {fit.breakpoint_ci[1]:.3g}]",
            "slope before": f"{fit.slope_before:+.3g} [{fit.slope_before_ci[0]:+.3g}, {fit.slope_before_ci[1]:+.3g}]",
            "slope after": f"{fit.slope_after:+.3g} [{fit.slope_after_ci[0]:+.3g}, {fit.slope_after_ci[1]:+.3g}]",
            "p (kink vs line)": f"{fit.p_value:.3g}", "verdict": verdict}


def _group_table(scores: pd.DataFrame) -> pd.DataFrame:
    cells = cell_columns(scores)
    table = scores[cells + ["group", "n_languages"]].copy()
    table["macro [95% CI]"] = [_interval(m, lo, hi, n) for m, lo, hi, n in
                               zip(scores["mean"], scores["ci_low"], scores["ci_high"], scores["n"])]
    table["languages"] = scores["group_languages"]
    return table


def _resource_section(r: Report, results: StudyResults, bench: str, slug: str, out: Path, options: ReportOptions,
                      largest: pd.Series, head: tuple[str, str]) -> None:
    """Each resource group's macro per recipe at the largest model and language count."""
    r.add("### Low-resource view", "")
    chosen = results.select(benchmark=bench, size=largest["size"])
    try:
        if options.resource_levels == "data-size":
            evaluated = sorted(set(chosen["query_lang"]) - {"*"})
            table = size_levels(results.study, evaluated, options.size_edges)
            what = (f"training rows per language in this study's data (`study.json`; levels cut at "
                    f"{', '.join(f'{e:,}' for e in options.size_edges)}; an evaluation language without training "
                    "data has 0 rows)")
        else:
            table = JOSHI_2020
            what = (f"{JOSHI_2020.source}; classes 0-5, lowest first; `analysis/joshi2020.py` says how codes were "
                    "matched")
        scores = resource_group_scores(chosen, table, setting=head[0], metric=head[1], seed=options.seed)
    except ValueError as exc:
        r.add(f"No low-resource view: {exc}.", "")
        return
    top, where = scores, f"model {largest['size']}"
    if "num_languages" in scores and scores["num_languages"].notna().any():
        top = scores[scores["num_languages"] == scores["num_languages"].max()]
        where += f", {int(top['num_languages'].iloc[0])} training languages"
        where += " (the largest k)" if "num_languages" in results.varying() else ""
    name = _name(head)
    r.add(f"{name[:1].upper() + name[1:]} per resource level of the evaluation languages ({what}), per trial, then "
          "over seeds; "
          f"{where}. Languages the levels do not classify are in 'unclassified'.", "",
          *markdown_table(_group_table(top)))
    r.figure(figures.plot_group_bars(top, title=f"{bench}: {name} by resource level, {where}",
                                     ylabel=figures.label(head[1]), order=list(table.group_order())),
             out, f"{slug}-resource-groups", f"{bench}: {name} per resource level of the evaluation "
             f"languages ({table.name}), one bar per recipe, 95% interval over seeds ({where})")


def _training_sections(r: Report, results: StudyResults, out: Path, options: ReportOptions) -> None:
    r.add("## Training", "")
    try:
        curve = step_curve(results)
        r.figure(figures.plot_curve(curve, x="step", title="training loss", ylabel=figures.label("loss")), out,
                 "training-loss", "training loss (InfoNCE, mean over the reporting window) against step")
    except ValueError as exc:
        r.add(f"No training curves: {exc}.", "")
    for kind in HELDOUT_KINDS:  # recorded every run.heldout_every steps, when the study set it
        column = heldout_column(kind)
        if column in results.curves and results.curves[column].notna().any():
            curve = step_curve(results, column=column)
            r.figure(figures.plot_curve(curve, x="step", title=f"held-out loss, {kind.upper()} batches",
                                        ylabel=figures.label(column)), out, f"heldout-{kind}-vs-step",
                     f"held-out contrastive loss on {kind.upper()} batches against training step")
    if "size" in results.varying():
        for kind in HELDOUT_KINDS:
            try:
                curve, fits = heldout_fits(results, kind=kind, n_bootstrap=options.n_bootstrap, seed=options.seed)
            except ValueError as exc:
                r.add(f"No held-out loss ({kind}): {exc}.", "")
                continue
            column = heldout_column(kind)
            r.add(f"Held-out loss on {kind.upper()} batches, power law in non-embedding parameters:", "",
                  *_fit_text(fits))
            r.figure(figures.plot_curve(curve, x="non_embedding_params", title=f"held-out loss, {kind.upper()} batches",
                                        ylabel=figures.label(column), fits=fits, metric=column),
                     out, f"heldout-{kind}-vs-size", f"held-out contrastive loss on {kind.upper()} batches against "
                     "non-embedding parameters, dashed: fitted power law")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    p.add_argument("results", help="a study's result folder (storage/<study name>) or cloud URI")
    p.add_argument("--out", required=True, help="folder for report.md and figures/")
    p.add_argument("--benchmark", help="only this benchmark (default: all)")
    p.add_argument("--beyond", type=int, help="slope of mAP per added language from this count on (default: smallest)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap refits per power-law fit")
    p.add_argument("--seed", type=int, default=0, help="seed of every bootstrap")
    p.add_argument("--resource-levels", choices=("joshi2020", "data-size"), default="joshi2020",
                   help="low-resource view by Joshi et al. 2020's classes, or by the study's training rows per language")
    p.add_argument("--size-edges", default="1000,10000",
                   help="with --resource-levels data-size: ascending row counts where levels change (default 1000,10000)")
    args = p.parse_args(argv)
    try:
        edges = tuple(int(e) for e in args.size_edges.split(","))
    except ValueError:
        p.error(f"--size-edges {args.size_edges!r}: write ascending whole numbers separated by commas, e.g. 1000,10000")
    try:
        results = load(args.results)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    known = sorted(results.metrics["benchmark"].unique())
    if args.benchmark and args.benchmark not in known:
        print(f"error: --benchmark {args.benchmark!r} is not in this study; its benchmarks are {known}", file=sys.stderr)
        return 2
    out = Path(args.out)
    options = ReportOptions(args.benchmark, args.beyond, args.n_bootstrap, args.seed, args.resource_levels, edges)
    report = build_report(results, out, options)
    print(f"wrote {out / 'report.md'} with {len(report.figures)} figures ({len(results.trials)} trials)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
