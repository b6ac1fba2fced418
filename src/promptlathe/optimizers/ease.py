"""``--optimizer ease``: an order-aware exemplar bandit (EASE, NeurIPS 2024) with our racing.

On small models the gain comes from exemplars, and their *order* matters. The stage keeps the
instruction it starts from and searches ordered exemplar sets:

1. **Arms**: ``N_ARMS`` ordered sets of 1 to ``--max-shots`` exemplars (about as many of
   each size) drawn from the run's pool (the model's own outputs the metric validated, and
   labeled train examples), and the start prompt with no exemplars; two orders of the same
   exemplars are two arms. How many exemplars help is itself a finding: a small model may
   copy its last exemplar's answer, and zero-shot can beat every demo set.
2. **Pre-selection**: the ``KEEP`` arms whose exemplars are nearest the validation inputs
   (mean best TF-IDF cosine) are kept, and the zero-shot arm: a cheap stand-in for the
   paper's optimal-transport screen of sets far from the task.
3. **Embedding**: an arm is the concatenation, position by position, of its exemplars'
   TF-IDF vectors reduced to a few dimensions (zeros where it has no exemplar), so an order,
   and a count, is a different point.
4. **Bandit**: a Gaussian-process surrogate over the embeddings (scikit-learn; the paper uses
   a neural UCB) picks, by its upper confidence bound, which arm to evaluate on its next
   ``PULL`` validation examples. Every arm walks validation in the same order a race does,
   so what a pull paid for is reused when the arm is raced.
5. **Finalists**: the ``FINALISTS`` arms the surrogate rates best are raced on validation
   with ``ctx.race`` (pruned as usual), then the next best-rated arms while the stage has
   calls left for a first rung, and the complete ones returned.

Decisions depend only on the scores, which the store keeps, so a killed run replays its
pulls from the cache and goes on where it stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promptlathe.errors import BudgetExhausted
from promptlathe.optimizers._context import RunContext
from promptlathe.optimizers._plan import Plan
from promptlathe.optimizers._protocol import Optimizer, register
from promptlathe.optimizers._stages import ensure_demos
from promptlathe.optimizers._state import ExemplarState
from promptlathe.optimizers.random_search import exemplar_pool
from promptlathe.prompts import Exemplar, Prompt
from promptlathe.tasks import Example

STUDY = "ease"
SHARE = 0.5
"""Of the search calls, the share the stage takes when another stage follows it."""
N_ARMS = 48
KEEP = 24
PULL = 4
"""Validation examples per pull."""
BANDIT_SHARE = 0.6
"""Of the stage's calls, the share for pulls; the rest races the finalists to the end."""
FINALISTS = 3
BETA = 2.0
"""Weight of the surrogate's standard deviation in the upper confidence bound."""
AMPLITUDE = 0.05
"""Prior variance of an arm's score around the mean of the pulls (sd about 0.22)."""
LENGTH = 0.5
PRIOR_MEAN = 0.5
DIMS = 8
"""Dimensions each exemplar's TF-IDF vector is reduced to."""


def draw_arms(pool: Sequence[Exemplar], k: int, seed: int, n: int) -> list[tuple[Exemplar, ...]]:
    """Up to ``n`` distinct ordered sets of 1 to ``k`` exemplars, about ``n / k`` of each size
    (fewer where the pool has fewer; seeded: a resumed run draws the same arms). Orders are
    kept: ``(a, b)`` and ``(b, a)`` are two arms."""
    k = min(k, len(pool))
    if k == 0:
        return []
    rng = np.random.default_rng([seed, 31337])
    arms: dict[tuple[int, ...], None] = {}
    for size in range(1, k + 1):
        want = len(arms) + (n - len(arms)) // (k + 1 - size)  # sizes left share what is left
        for _ in range(20 * n):
            if len(arms) >= want:
                break
            arms.setdefault(tuple(int(i) for i in rng.choice(len(pool), size=size, replace=False)))
    return [tuple(pool[i] for i in arm) for arm in arms]


@dataclass(frozen=True)
class Embedded:
    """Arms embedded for the surrogate, and how near each one's exemplars are to the task."""

    features: np.ndarray
    nearness: np.ndarray


def embed(arms: Sequence[tuple[Exemplar, ...]], val_inputs: Sequence[str]) -> Embedded:
    """Position-wise concatenated, reduced TF-IDF vectors of each arm's exemplars, and the
    mean over its exemplars of the best cosine similarity to a validation input."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = sorted({f"{e.input}\n{e.output}" for arm in arms for e in arm})
    if not texts:
        return Embedded(np.zeros((len(arms), 1)), np.zeros(len(arms)))
    index = {t: i for i, t in enumerate(texts)}
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    matrix = vectorizer.fit_transform([*texts, *val_inputs])
    demos, queries = matrix[: len(texts)], matrix[len(texts) :]
    near = (demos @ queries.T).max(axis=1).toarray().ravel()  # rows are l2-normalised
    dims = max(1, min(DIMS, len(texts) - 1, demos.shape[1] - 1))
    if len(texts) > 2 and demos.shape[1] > 2:
        reduced = TruncatedSVD(n_components=dims, random_state=0).fit_transform(demos)
    else:
        reduced = demos.toarray()
    width = reduced.shape[1]
    slots = max(len(arm) for arm in arms)
    rows, nearness = [], []
    for arm in arms:
        ids = [index[f"{e.input}\n{e.output}"] for e in arm]
        row = np.zeros(slots * width)  # positions past the arm's last exemplar stay 0
        for pos, i in enumerate(ids):
            row[pos * width : (pos + 1) * width] = reduced[i]
        rows.append(row)
        nearness.append(float(np.mean([near[i] for i in ids])) if ids else 0.0)
    return Embedded(np.array(rows), np.array(nearness))


class Surrogate:
    """A Gaussian process over arm embeddings fitted to pull rewards; ``ucb`` and ``mean``
    score every arm. The kernel is fixed, not fitted (a few dozen noisy pulls cannot fit
    one): features are scaled to a median pairwise distance of 1, and arms at that distance
    share about a seventh of their evidence (length scale ``LENGTH``); the noise is that of
    the mean of ``PULL`` right-or-wrong scores near 0.5."""

    def __init__(self, features: np.ndarray) -> None:
        dist = np.linalg.norm(features[:, None, :] - features[None, :, :], axis=-1)
        scale = float(np.median(dist[np.triu_indices(len(features), 1)])) if len(dist) > 1 else 1
        self.x = features / (scale or 1.0)
        self.obs_x: list[np.ndarray] = []
        self.obs_y: list[float] = []
        self._mu = np.full(len(features), PRIOR_MEAN)
        self._sd = np.full(len(features), np.sqrt(AMPLITUDE))

    def observe(self, arm: int, reward: float) -> None:
        self.obs_x.append(self.x[arm])
        self.obs_y.append(reward)
        self._fit()

    def _fit(self) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(AMPLITUDE, "fixed") * RBF(LENGTH, "fixed") + WhiteKernel(
            0.25 / PULL, "fixed"
        )
        gp = GaussianProcessRegressor(kernel=kernel, optimizer=None)
        y = np.array(self.obs_y)
        prior = float(y.mean()) if len(y) >= 4 else PRIOR_MEAN
        gp.fit(np.array(self.obs_x), y - prior)
        mu, sd = gp.predict(self.x, return_std=True)
        self._mu, self._sd = mu + prior, sd

    def ucb(self) -> np.ndarray:
        return self._mu + BETA * self._sd

    def mean(self) -> np.ndarray:
        return self._mu


@register
class EaseOptimizer(Optimizer):
    name = "ease"
    summary = "order-aware exemplar bandit (EASE): GP-UCB over ordered demo sets, raced"
    share = SHARE

    def plan_lines(self, plan: Plan) -> list[str]:
        return [
            f"  bootstrap demos      ≤ {plan.stages['bootstrap']:>5} calls",
            f"  exemplar bandit      ≈ {plan.stages['search']:>5} calls ({KEEP} of {N_ARMS} "
            f"ordered sets and zero-shot, pulls of {PULL}, {FINALISTS} finalists raced, then "
            f"the next best sets while calls remain; {int(SHARE * 100)} % when a stage follows)",
        ]

    def run(self, ctx: RunContext, start: Sequence[Prompt]) -> list[Prompt]:
        ensure_demos(ctx)
        base = start[0] if start else ctx.seed_prompt
        pool = exemplar_pool(ctx.state(ExemplarState).demo_sets or [])
        arms = draw_arms(pool, ctx.cfg.max_shots, ctx.seed, N_ARMS)
        if len(arms) < 2:
            ctx.emit("ease", f"{len(pool)} exemplars in the pool: nothing to choose from")
            return list(start)
        arms = [(), *arms]  # the start prompt with no exemplars is an arm too
        val = list(ctx.data.val)
        emb = embed(arms, [e.input for e in val])
        near = np.argsort(-emb.nearness[1:], kind="stable")[:KEEP] + 1
        keep = [0, *sorted(near.tolist())]  # the zero-shot arm has no nearness to screen
        arms = [arms[i] for i in keep]
        surrogate = Surrogate(emb.features[keep])
        cap = ctx.stage_cap(SHARE, "ease_cap")
        left = ctx.budget.remaining if cap is None else cap - ctx.budget.used
        pull_cap = None if left is None else ctx.budget.used + int(BANDIT_SHARE * max(left, 0))
        ctx.emit(
            "ease",
            f"{len(arms) - 1} ordered sets of 1 to {ctx.cfg.max_shots} of {len(pool)} "
            "exemplars, and none; pulling",
        )
        seen = [0] * len(arms)
        with ctx.stage_limit(pull_cap), contextlib.suppress(BudgetExhausted):
            self._pull(ctx, base, arms, val, surrogate, seen)
        pulled = [i for i, n in enumerate(seen) if n]
        rank = sorted(pulled, key=lambda i: (-surrogate.mean()[i], i))
        candidates = [base.with_(exemplars=arms[i]) for i in rank]
        n_final = min(FINALISTS, len(candidates))
        ctx.emit("ease", f"{sum(seen)} examples pulled over {len(pulled)} sets; racing {n_final}")
        study = ctx.study(STUDY)
        raced: list[Prompt] = []
        with ctx.stage_limit(cap):
            try:
                for i, prompt in enumerate(candidates):
                    # Past the finalists, the next best-rated sets are raced while the stage
                    # still has the calls to take one through its first rung: calls left over
                    # when the pulls and finalists cost less than planned are not wasted.
                    left = ctx.budget.remaining  # under the stage's cap, set just above
                    if i >= n_final and left is not None and left <= ctx.plan.rungs[0]:
                        break
                    outcome = ctx.race(prompt, study=study, source="ease")
                    raced.append(prompt)
                    label = f"finalist {i + 1}/{n_final}" if i < n_final else f"set {i + 1}"
                    ctx.emit("ease", f"{label}: {outcome}")
            except BudgetExhausted as exc:
                ctx.emit("ease", f"exemplar bandit stopped: {exc}")
        ids = {p.hash for p in raced}
        return [e.to_prompt() for e in ctx.log.complete() if e.id in ids] or list(start)

    @staticmethod
    def _pull(
        ctx: RunContext,
        base: Prompt,
        arms: list[tuple[Exemplar, ...]],
        val: list[Example],
        surrogate: Surrogate,
        seen: list[int],
    ) -> None:
        """Pull arms by upper confidence bound until the budget stops it or every arm has
        seen all of validation."""
        while True:
            open_arms = [i for i in range(len(arms)) if seen[i] < len(val)]
            if not open_arms:
                return
            ucb = surrogate.ucb()
            arm = max(open_arms, key=lambda i: (ucb[i], -i))
            batch = val[seen[arm] : seen[arm] + PULL]
            records = ctx.records(base.with_(exemplars=arms[arm]), batch)
            seen[arm] += len(batch)
            surrogate.observe(arm, float(np.mean([r.score for r in records])))
