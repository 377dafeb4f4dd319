"""X-Y batches: every pair has its query in one language and its passage in another, both
available in that group; and "multilingual" batches (standard multilingual fine-tuning: rows of
all training languages shuffled together, query and passage in the same language)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError


@dataclass
class CrossLingualSampler(BatchSampler):
    kind = "xy"

    def validate(self) -> None:
        if len(self.index.multi_groups) < self.batch_size:
            raise SamplerConfigError(f"X-Y batches need groups in at least two training languages; the corpus has "
                                     f"{len(self.index.multi_groups)}, fewer than batch_size {self.batch_size}")

    def eligible_rows(self) -> int:
        return int(sum(len(self.index.group_langs[g]) for g in self.index.multi_groups))

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        groups = self._choose(rng, self.index.multi_groups, "cross-lingual pairs")
        q_rows, p_rows, langs = [], [], set()
        for g in groups:
            available = self.index.group_langs[int(g)]
            x, y = rng.choice(len(available), size=2, replace=False)
            q_rows.append(self.index.rows[(int(g), available[x])])
            p_rows.append(self.index.rows[(int(g), available[y])])
            langs.update((available[x], available[y]))
        return Batch(step, self.kind, np.array(q_rows, dtype=np.int64), np.array(p_rows, dtype=np.int64),
                     tuple(sorted(langs)))


@dataclass
class MultilingualSampler(BatchSampler):
    kind = "multilingual"

    def validate(self) -> None:
        self._rows = np.array(sorted(r for r in self.index.rows.values() if self.index.mono_ok[r]), dtype=np.int64)
        if not len(self._rows):
            raise SamplerConfigError("multilingual batches need monolingual pairs, but every query in this corpus "
                                     "equals its passage (bitext); use xy")
        self._group_of_row = {row: gi for (gi, _), row in self.index.rows.items()}
        self._lang_of_row = {row: lang for (_, lang), row in self.index.rows.items()}
        if len({self._group_of_row[int(r)] for r in self._rows}) < self.batch_size:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the number of groups")

    def eligible_rows(self) -> int:
        return len(self._rows)

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        chosen, seen = [], set()
        while len(chosen) < self.batch_size:  # uniform over rows, one row per group
            for row in rng.choice(self._rows, size=min(len(self._rows), 2 * self.batch_size), replace=False):
                g = self._group_of_row[int(row)]
                if g not in seen:
                    seen.add(g)
                    chosen.append(int(row))
                    if len(chosen) == self.batch_size:
                        break
        rows = np.array(chosen, dtype=np.int64)
        return Batch(step, self.kind, rows, rows.copy(), tuple(sorted({self._lang_of_row[r] for r in chosen})))
