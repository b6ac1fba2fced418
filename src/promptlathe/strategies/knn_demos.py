"""``knn_demos`` (Medprompt's dynamic few-shot): for each input, the ``k`` most similar
labeled train examples are its exemplars, the most similar last (next to the input).

The pool is the prompt's exemplars (the search puts the labeled train examples there, a
winner ships with every labeled example of its run, and they travel with the exported
prompt). Similarity is cosine over TF-IDF character n-grams
(scikit-learn): no embedding model to download, the same on every backend."""

from __future__ import annotations

import functools
from typing import Any

from promptlathe.prompts import Prompt
from promptlathe.strategies._protocol import Call, Strategy, TaskView, register

MIN_POOL = 4


@functools.lru_cache(maxsize=16)
def _index(pool: tuple[str, ...]) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    matrix = vectorizer.fit_transform(pool)
    return vectorizer, NearestNeighbors(metric="cosine", algorithm="brute").fit(matrix)


def nearest(pool: tuple[str, ...], query: str, k: int) -> list[int]:
    """Indices of the ``k`` pool inputs most similar to ``query`` (an identical input
    excluded), most similar first; ties keep pool order."""
    vectorizer, nn = _index(pool)
    n = min(len(pool), k + 1)
    dist, idx = nn.kneighbors(vectorizer.transform([query]), n_neighbors=n)
    ranked = sorted(zip(dist[0], idx[0], strict=True), key=lambda t: (round(float(t[0]), 9), t[1]))
    return [int(i) for _, i in ranked if pool[int(i)] != query][:k]


@register
class KnnDemos(Strategy):
    name = "knn_demos"
    summary = "per input, the k most similar train examples as exemplars"
    demos = "pool"

    def applies(self, task: TaskView) -> str | None:
        if len(task.inputs) < MIN_POOL:
            return f"needs at least {MIN_POOL} labeled train examples"
        return None

    def calls(self, prompt: Prompt, query: str) -> list[Call]:
        pool = prompt.exemplars
        if not pool:
            return [Call(prompt, query)]
        picked = nearest(tuple(e.input for e in pool), query, self.k)
        return [Call(prompt.with_(exemplars=[pool[i] for i in reversed(picked)]), query)]
