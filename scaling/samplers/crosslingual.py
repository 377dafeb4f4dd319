"""X-Y batches: every pair has its query in one language and its passage in another, both
available in that group. The two languages are drawn uniformly among the group's, or (with
``language_sampling: size``) in proportion to each language's X-Y size ** (1 / temperature),
the query's first, the passage's from the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError
from scaling.samplers.monolingual import LanguageSampling, language_probabilities
from scaling.samplers.registry import register_strategy


@dataclass
class CrossLingualSampler(BatchSampler):
    kind = "xy"

    def validate(self) -> None:
        if len(self.index.multi_groups) < self.batch_size:
            raise SamplerConfigError(f"X-Y batches need groups in at least two training languages; the corpus has "
                                     f"{len(self.index.multi_groups)}, fewer than batch_size {self.batch_size}")

    def setup(self) -> None:
        self._lang_weight: dict[str, float] | None = None
        if self.params.language_sampling == "size":
            sizes = {lang: self.index.xy_size(lang) for lang in self.index.languages}
            self._lang_weight = dict(zip(sizes, language_probabilities(sizes, "size", self.params.temperature)))

    def eligible_rows(self) -> int:
        return int(sum(len(self.index.group_langs[g]) for g in self.index.multi_groups))

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        groups = self._choose(rng, self.index.multi_groups, "cross-lingual pairs", self.index.multi_weights)
        q_rows, p_rows, langs = [], [], set()
        for g in groups:
            available = self.index.group_langs[int(g)]
            if self._lang_weight is None:
                x, y = rng.choice(len(available), size=2, replace=False)
            else:
                w = np.array([self._lang_weight[lang] for lang in available])
                x, y = rng.choice(len(available), size=2, replace=False, p=w / w.sum())
            q_rows.append(self.index.rows[(int(g), available[x])])
            p_rows.append(self.index.rows[(int(g), available[y])])
            langs.update((available[x], available[y]))
        return Batch(step, self.kind, np.array(q_rows, dtype=np.int64), np.array(p_rows, dtype=np.int64),
                     tuple(sorted(langs)))


register_strategy("xy", LanguageSampling, CrossLingualSampler)
