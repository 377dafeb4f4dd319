"""Command line: look at a data source before training on it.

    python -m scaling.data inspect SOURCE [--benchmark] [--data-dir DIR] [--languages de,en]
    python -m scaling.data overlap CORPUS BENCHMARK [--data-dir DIR]
    python -m scaling.data splitter-agreement [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys

from scaling.data.errors import DataError
from scaling.data.overlap import check_overlap
from scaling.data.sources import load_benchmark, load_corpus
from scaling.languages import language_name


def _languages(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def inspect_corpus(args) -> None:
    corpus = load_corpus(args.source, data_dir=args.data_dir, languages=_languages(args.languages),
                         passage=args.passage)
    sizes = corpus.group_sizes()
    print(f"corpus {args.source}: {len(corpus)} rows, {corpus.num_groups} groups, "
          f"{len(corpus.languages)} languages, sources {', '.join(corpus.sources)}"
          + (" (bitext: query = passage)" if corpus.is_bitext else ""))
    print("groups by number of language versions: "
          + ", ".join(f"{n} langs: {c}" for n, c in sorted(sizes.items())))
    print(f"cross-lingual (query lang != passage lang) pairs available: {corpus.cross_lingual_pairs()}")
    print(f"{'lang':<10}{'name':<28}{'mono pairs':>11}{'cross pairs':>13}")
    for s in corpus.language_stats():
        print(f"{s.lang:<10}{language_name(s.lang)[:27]:<28}{s.pairs:>11}{s.cross_pairs:>13}")


def inspect_benchmark(args) -> None:
    benches = load_benchmark(args.source, data_dir=args.data_dir, languages=_languages(args.languages), lang=args.lang)
    for bench in benches:
        s = bench.summary()
        print(f"benchmark {s['name']}: {s['queries']} queries ({s['query_groups']} groups), "
              f"{s['candidates']} candidates; relevant per query: {s['relevant_per_query']}")
        if s["excluded_self_matches"]:
            print(f"{s['excluded_self_matches']} queries are also candidates: each is excluded from its own ranking")
        if len(benches) == 1:
            print(f"{'lang':<10}{'queries':>9}{'candidates':>12}")
            for lang in sorted(set(s["queries_per_language"]) | set(s["candidates_per_language"])):
                print(f"{lang:<10}{s['queries_per_language'].get(lang, 0):>9}{s['candidates_per_language'].get(lang, 0):>12}")
        for note in s["notes"]:
            print(f"note: {note}")


def overlap(args) -> None:
    corpus = load_corpus(args.corpus, data_dir=args.data_dir)
    for b in load_benchmark(args.benchmark, data_dir=args.data_dir):
        print(check_overlap(corpus, b, corpus_name=args.corpus).describe())


def splitter_agreement(args) -> None:
    from scaling.data.sentences import splitter_agreement as agreement
    from scaling.data.sources import REGISTRY, locate
    from scaling.data.squad import read_squad_json

    entry = REGISTRY["xquad-r"]
    folder = locate(entry, directory=args.data_dir)
    print(f"{'lang':<6}{'boundary P':>11}{'R':>7}{'F1':>7}{'paragraphs exact':>18}{'answer sentence same':>22}")
    for code in entry.file_codes:
        a = agreement(read_squad_json(folder / f"{code}.json"), code)
        print(f"{a.lang:<6}{a.boundary_precision:>11.3f}{a.boundary_recall:>7.3f}{a.boundary_f1:>7.3f}"
              f"{a.paragraph_exact:>18.3f}{a.answer_sentence_exact:>22.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.data", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with the datasets (default: $SCALING_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="languages, groups and pairs per language of a source")
    p.add_argument("source", help="registered name (xquad-r, sib-200:train, parallel-qa:eval ...), path, URL or hf:NAME")
    p.add_argument("--benchmark", action="store_true", help="read it as a retrieval benchmark")
    p.add_argument("--languages", help="comma-separated subset, any code style (de,deu,deu_Latn)")
    p.add_argument("--passage", choices=("sentence", "paragraph"), default="sentence")
    p.add_argument("--lang", help="language of a BEIR folder")
    p = sub.add_parser("overlap", help="zero-shot check: what a corpus shares with a benchmark")
    p.add_argument("corpus")
    p.add_argument("benchmark")
    sub.add_parser("splitter-agreement", help="our sentence splitter against XQuAD-R's breaks")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            (inspect_benchmark if args.benchmark else inspect_corpus)(args)
        elif args.command == "overlap":
            overlap(args)
        else:
            splitter_agreement(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
