""""Multilingual" batches (standard multilingual fine-tuning): rows of all training languages
shuffled together, query and passage in the same language."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError
from scaling.samplers.registry import NoParams, register_strategy


@dataclass
class MultilingualSampler(BatchSampler):
    kind = "multilingual"

    def validate(self) -> None:
        rows = [r for r in self.index.rows.values() if self.index.mono_ok[r]]
        if not rows:
            raise SamplerConfigError("multilingual batches need monolingual pairs, but every query in this corpus "
                                     "equals its passage (bitext); use xy")
        groups = {gi for (gi, _), row in self.index.rows.items() if self.index.mono_ok[row]}
        if len(groups) < self.batch_size:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the number of groups ({len(groups)})")

    def setup(self) -> None:
        self._rows = np.array(sorted(r for r in self.index.rows.values() if self.index.mono_ok[r]), dtype=np.int64)
        self._group_of_row = {row: gi for (gi, _), row in self.index.rows.items()}
        self._lang_of_row = {row: lang for (_, lang), row in self.index.rows.items()}
        w = self.index.row_weight
        self._p = None if w is None else w[self._rows] / w[self._rows].sum()

    def eligible_rows(self) -> int:
        return len(self._rows)

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        chosen, seen = [], set()
        while len(chosen) < self.batch_size:  # uniform over rows, one row per group
            for row in rng.choice(self._rows, size=min(len(self._rows), 2 * self.batch_size), replace=False, p=self._p):
                g = self._group_of_row[int(row)]
                if g not in seen:
                    seen.add(g)
                    chosen.append(int(row))
                    if len(chosen) == self.batch_size:
                        break
        rows = np.array(chosen, dtype=np.int64)
        return Batch(step, self.kind, rows, rows.copy(), tuple(sorted({self._lang_of_row[r] for r in chosen})))


register_strategy("multilingual", NoParams, MultilingualSampler)
