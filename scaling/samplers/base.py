"""What every batch strategy shares: the corpus index, the global batch, determinism and state.

A sampler draws the *global* batch (all workers) once per step and each worker takes its slice,
so every worker trains on the same batch type and languages at a step and gathered negatives
share the batch's type (FlagEmbedding's design). Each step's batch depends only on
(seed, epoch, step), so a resumed run continues the same sequence and no state beyond the
position needs saving. Within a global batch every parallel group appears at most once: two
translations of one item would be false negatives for each other.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from scaling.data.corpus import ParallelCorpus
from scaling.languages import canonical
from scaling.samplers.errors import SamplerConfigError


@dataclass(frozen=True)
class Batch:
    """One global batch: corpus row indices of queries and of their positive passages."""

    step: int
    kind: str  # "xx", "xy", "multilingual", "single"
    query_rows: np.ndarray
    passage_rows: np.ndarray
    languages: tuple[str, ...]  # languages present (for xx/single: the one language)

    def slice(self, rank: int, world_size: int) -> "Batch":
        """This worker's contiguous share of the global batch."""
        n = len(self.query_rows)
        if n % world_size:
            raise ValueError(f"global batch {n} is not divisible by {world_size} workers")
        per = n // world_size
        part = slice(rank * per, (rank + 1) * per)
        return Batch(self.step, self.kind, self.query_rows[part], self.passage_rows[part], self.languages)


class CorpusIndex:
    """Rows of a corpus by group and language, restricted to the training languages."""

    def __init__(self, corpus: ParallelCorpus, languages: Sequence[str] | None = None,
                 source_weights: Mapping[str, float] | None = None) -> None:
        t = corpus.table
        langs = t.column("lang").to_pylist()
        wanted = list(corpus.languages) if languages is None else [canonical(x) for x in languages]
        absent = [x for x in wanted if x not in corpus.languages]
        if absent:
            raise SamplerConfigError(f"training languages {absent} are not in the corpus "
                                     f"(it has {', '.join(corpus.languages)})")
        self.languages: tuple[str, ...] = tuple(wanted)
        keep = set(wanted)
        groups = t.column("group_id").to_pylist()
        queries, passages = t.column("query").to_pylist(), t.column("passage").to_pylist()
        self.group_names: list[str] = []
        group_of: dict[str, int] = {}
        self.rows: dict[tuple[int, str], int] = {}  # (group index, language) -> row
        self.mono_ok = np.zeros(len(t), dtype=bool)  # query != passage: usable as a monolingual pair
        for row, (g, lang) in enumerate(zip(groups, langs)):
            if lang not in keep:
                continue
            gi = group_of.setdefault(g, len(group_of))
            if gi == len(self.group_names):
                self.group_names.append(g)
            self.rows[(gi, lang)] = row
            self.mono_ok[row] = queries[row] != passages[row]
        self.group_langs: list[list[str]] = [[] for _ in self.group_names]
        for (gi, lang) in self.rows:
            self.group_langs[gi].append(lang)
        # groups usable for a monolingual pair in each language
        self.mono_groups: dict[str, np.ndarray] = {}
        by_lang = collections.defaultdict(list)
        for (gi, lang), row in self.rows.items():
            if self.mono_ok[row]:
                by_lang[lang].append(gi)
        for lang in self.languages:
            self.mono_groups[lang] = np.array(sorted(by_lang[lang]), dtype=np.int64)
        self.multi_groups = np.array([gi for gi, ls in enumerate(self.group_langs) if len(ls) >= 2], dtype=np.int64)
        self.row_lang = np.array(langs, dtype=object)
        self.row_source = np.array(t.column("source").to_pylist(), dtype=object)
        self._weigh(source_weights)
        self._xy_sizes: dict[str, float] | None = None  # counted on first use (X-Y size sampling only)

    def _weigh(self, source_weights: Mapping[str, float] | None) -> None:
        """Draw weights from the sources' weights (``scaling.data.mixing``); None: unweighted."""
        self.row_weight: np.ndarray | None = None
        self.mono_weights: dict[str, np.ndarray] = {}
        self.multi_weights: np.ndarray | None = None
        if not source_weights:
            return
        missing = sorted(set(self.row_source) - set(source_weights))
        if missing:
            raise SamplerConfigError(f"rows of source(s) {missing} have no weight; the weights name {sorted(source_weights)}")
        self.row_weight = np.array([source_weights[s] for s in self.row_source], dtype=np.float64)
        for lang, groups in self.mono_groups.items():
            self.mono_weights[lang] = np.array([self.row_weight[self.rows[(int(g), lang)]] for g in groups])
        self.multi_weights = np.array([np.mean([self.row_weight[self.rows[(int(g), lang)]] for lang in self.group_langs[g]])
                                       for g in self.multi_groups], dtype=np.float64)

    def mono_size(self, lang: str) -> float:
        """A language's X-X data size: its monolingual groups, each counted by its row's weight."""
        return float(self.mono_weights[lang].sum()) if self.row_weight is not None else float(len(self.mono_groups[lang]))

    def xy_size(self, lang: str) -> float:
        """A language's X-Y data size: its rows in groups of two or more languages, each counted by
        its row's weight (bitext counts here, not in ``mono_size``)."""
        if self._xy_sizes is None:
            self._xy_sizes = collections.defaultdict(float)
            for gi in self.multi_groups:
                for code in self.group_langs[gi]:
                    row = self.rows[(int(gi), code)]
                    self._xy_sizes[code] += 1.0 if self.row_weight is None else float(self.row_weight[row])
        return self._xy_sizes.get(lang, 0.0)

    @property
    def num_rows(self) -> int:
        return len(self.rows)


@dataclass
class SamplerState:
    epoch: int = 0
    step: int = 0  # steps already taken in this epoch


@dataclass
class BatchSampler:
    """Base: subclasses implement ``draw(rng, step)`` returning one global batch.

    ``params`` is the strategy's own parameters dataclass (see ``registry``); ``validate()``
    refuses a corpus the strategy cannot draw from, then ``setup()`` builds what ``draw`` uses.
    """

    index: CorpusIndex
    batch_size: int
    seed: int = 0
    steps_per_epoch: int | None = None
    params: Any = None  # None: the strategy's default parameters
    state: SamplerState = field(default_factory=SamplerState)
    kind = "base"

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise SamplerConfigError(f"batch_size must be at least 2 (in-batch negatives), not {self.batch_size}")
        if self.params is None:
            from scaling.samplers.registry import get_strategy

            self.params = get_strategy(self.kind).params()
        self.validate()
        self.setup()
        if self.steps_per_epoch is None:
            self.steps_per_epoch = max(1, self.eligible_rows() // self.batch_size)

    # ---- to implement ---------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse a corpus this strategy cannot draw batches from (clear errors, before training)."""

    def setup(self) -> None:
        """Build what ``draw`` needs (after ``validate`` passed)."""

    def eligible_rows(self) -> int:
        return self.index.num_rows

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        raise NotImplementedError

    # ---- shared ---------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches one epoch yields; exactly what ``__iter__`` produces from a fresh epoch."""
        return self.steps_per_epoch

    def batch_at(self, epoch: int, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, epoch, step])
        return self.draw(rng, step)

    def __iter__(self) -> Iterator[Batch]:
        """The rest of the current epoch, advancing the state; then the next epoch starts."""
        while self.state.step < self.steps_per_epoch:
            batch = self.batch_at(self.state.epoch, self.state.step)
            self.state.step += 1
            yield batch
        self.state = SamplerState(self.state.epoch + 1, 0)

    def state_dict(self) -> dict:
        return {"epoch": self.state.epoch, "step": self.state.step, "seed": self.seed, "kind": self.kind}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind", self.kind) != self.kind or state.get("seed", self.seed) != self.seed:
            raise SamplerConfigError(f"checkpoint sampler ({state.get('kind')}, seed {state.get('seed')}) does not "
                                     f"match this run ({self.kind}, seed {self.seed})")
        self.state = SamplerState(int(state["epoch"]), int(state["step"]))

    # ---- helpers for subclasses -----------------------------------------------------------
    def _choose(self, rng: np.random.Generator, pool: np.ndarray, what: str, weights: np.ndarray | None = None
                ) -> np.ndarray:
        """``batch_size`` distinct entries of ``pool``: uniformly, or (a mix) in proportion to ``weights``."""
        if len(pool) < self.batch_size:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the {len(pool)} groups available "
                                     f"for {what}; lower the batch size or add data")
        if weights is None:
            return rng.choice(pool, size=self.batch_size, replace=False)
        return rng.choice(pool, size=self.batch_size, replace=False, p=weights / weights.sum())
