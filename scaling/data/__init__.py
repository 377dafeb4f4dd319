"""Data layer: parallel training corpora, retrieval benchmarks and the zero-shot overlap check.

Start from ``load_corpus`` and ``load_benchmark``; the modules below each read one format.
"""

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.corpus import CORPUS_SCHEMA, ParallelCorpus
from scaling.data.errors import DataError, SourceNotFoundError
from scaling.data.overlap import OverlapReport, check_overlap, drop_overlaps
from scaling.data.sources import REGISTRY, load_benchmark, load_corpus
from scaling.data.suites import BenchmarkSuite, SuiteRule

__all__ = [
    "BenchmarkSuite", "CORPUS_SCHEMA", "DataError", "OverlapReport", "ParallelCorpus", "REGISTRY", "RetrievalBenchmark",
    "SourceNotFoundError", "SuiteRule", "check_overlap", "drop_overlaps", "load_benchmark", "load_corpus",
]
