"""Daily customer batches drawn from held-out reference rows, with drift scenarios.

Each simulated day ``d`` lands its batch (features + ``customer_id``) and, ``label_delay`` days later, a
label delivery dated ``d+delay`` (``customer_id``, ``observed_ds``, target); :func:`churnguard.landing.simulate`
writes them into the data root. A day depends only on
``(scenario, seed, d)``: the customers are drawn from a random stream keyed by ``(seed, d)`` and the
scenario's effect from a second stream, so the same customers appear under every scenario (effects are
directly comparable) and any sub-range re-simulates to byte-identical partitions (backfills reproduce).

Customers (the dataset config's ``simulation.customers``): ``pool`` draws rows of the held-out pool with
replacement (a pool customer and its label come back day after day, under a new id each time: a model trained
on some days has seen the customers of the next), ``synthetic`` draws new customers from
:class:`SyntheticCustomers` (a kernel density around the pool's rows, the label from a model fitted to the pool),
each with an id of its own (``<prefix>N<seed>-<yyyymmdd>-<row>``). Synthetic rows start from the same donors as
``pool`` rows (the draw stream); their kernel and label noise comes from a third stream keyed by ``(seed, d)``.

Scenarios (parameters per dataset in its YAML, scaled by ``intensity``; active from ``onset``):

- ``none``: draws only.
- ``gradual``: the configured columns' means move by ``shift_std`` reference stds over ``ramp_days``.
- ``sudden``: ``column`` moves by ``amount`` at once.
- ``concept``: labels flip for a segment (``flip_rate``); features do not change.
- ``seasonal``: ``column`` oscillates by ``amplitude_std`` stds with ``period_days``.
- ``new_category``: an unseen ``value`` appears in ``column`` at ``rate``.
- ``class_balance``: the churn rate moves to ``target_rate`` (a prior shift; relation unchanged).

Combine with ``+``: ``sudden+concept``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from churnguard.config import DatasetConfig, SimulationConfig
from churnguard.data import load_reference, split_reference, target_array

log = logging.getLogger(__name__)

SCENARIOS = ("none", "gradual", "sudden", "concept", "seasonal", "new_category", "class_balance")


@dataclass(frozen=True)
class Scenario:
    """What happens to the batches: families combined with ``+``, their onset and intensity."""

    families: tuple[str, ...] = ("none",)
    onset: date | None = None
    intensity: float = 1.0

    @classmethod
    def parse(cls, name: str, onset: date | str | None = None, intensity: float = 1.0) -> Scenario:
        families = tuple(part.strip() for part in name.split("+") if part.strip())
        unknown = [f for f in families if f not in SCENARIOS]
        if not families or unknown:
            raise ValueError(
                f"scenario '{name}': unknown family {unknown or name!r}; choose from "
                f"{', '.join(SCENARIOS)} (combine with '+')"
            )
        if intensity < 0:
            raise ValueError(f"scenario '{name}': intensity must be >= 0, got {intensity}")
        onset_day = date.fromisoformat(str(onset)) if onset else None
        return cls(tuple(f for f in families if f != "none") or ("none",), onset_day, float(intensity))

    @property
    def name(self) -> str:
        return "+".join(self.families)

    def days_active(self, ds: date) -> int | None:
        """Days since onset (0 on the onset day), or None before it. No onset: active from the start."""
        if self.onset is None:
            return 0
        delta = (ds - self.onset).days
        return delta if delta >= 0 else None


@dataclass(frozen=True)
class DayBatch:
    ds: date
    landing: pd.DataFrame  # customer_id + features
    labels: pd.DataFrame  # customer_id, observed_ds, target


@dataclass(frozen=True)
class DaySpan:
    """Consecutive day batches in one frame: day ``i`` is rows ``offsets[i]:offsets[i + 1]``."""

    dates: list[date]
    landing: pd.DataFrame
    labels: pd.DataFrame
    offsets: np.ndarray

    def batch(self, i: int) -> DayBatch:
        rows = slice(int(self.offsets[i]), int(self.offsets[i + 1]))
        if rows == slice(0, len(self.landing)):
            return DayBatch(self.dates[i], self.landing, self.labels)
        return DayBatch(
            self.dates[i], self.landing.iloc[rows].reset_index(drop=True), self.labels.iloc[rows].reset_index(drop=True)
        )


class SyntheticCustomers:
    """New customers like a pool's: features from a kernel density around the pool's rows, the label drawn
    from a model of ``p(churn | features)`` fitted to the pool, so no customer's own label is ever copied.

    Features: a donor row (the draw stream picks it as for ``pool``), then its numeric columns' normal scores
    (``ndtri`` of the column's mid-ranks) ``z`` become ``mu + (z - mu + h * e) / sqrt(1 + h^2)``, ``e ~ N(0, S)``,
    with ``mu``, ``S`` the mean and covariance of the scores among the pool rows of the donor's class and
    stratum (the discrete column explaining most of the scores' variance: Telco's ``streaming_movies``, whose
    levels "No internet service", "No", "Yes" order the monthly charges) and ``h`` the bandwidth: a Gaussian
    kernel shaped like the group and shrunk so its means and covariances are kept; back through the pool's
    empirical quantiles, so every value is one the column takes (a missing value stays missing). Binary and
    categorical columns keep the donor's value, or with probability ``resample_rate`` are redrawn from their
    frequencies among the pool rows of the donor's class that share the donor's value of the column's parent
    (the other discrete column with the most mutual information with it), so Telco's "No internet service"
    levels stay consistent; the stratum is kept.

    Label: Bernoulli of a model of ``p(churn | features)`` fitted to the pool (normal scores and one-hot
    levels), ``spec.label_model``: ``logistic``, a logistic regression, keeps the pool's churn rate and, nearly,
    the label's covariance with every feature (its likelihood equations, up to the L2 penalty); ``boosting``,
    gradient-boosted trees (200 of depth 4, at least 20 pool rows a leaf: the best 5-fold log-loss on
    ``mlc_churn``'s pool among depths 2-6 and leaves of at least 20 or 50 rows, 0.171 against the logistic regression's
    0.330), keeps a non-linear churn rule a logistic regression loses. Neither copies a donor's label, so a
    model that memorised donors gains nothing on a new customer. A prior shift (``class_balance``) draws
    donors by class and moves the label model's log-odds by the prior's.
    """

    def __init__(self, pool: pd.DataFrame, y: np.ndarray, cfg: DatasetConfig, spec: SimulationConfig) -> None:
        self.cfg, self.h, self.rate = cfg, float(spec.bandwidth), float(spec.resample_rate)
        self.label_model = spec.label_model
        self.y = y
        n = len(pool)
        self.sorted = [np.sort(pool[c].dropna().to_numpy(dtype="float64")) for c in cfg.numeric]
        # the normal score of the value at each sorted position (ties share their mid-rank's)
        self.sorted_scores = [
            ndtri((np.searchsorted(t, t, "left") + np.searchsorted(t, t, "right")) / (2 * len(t))) for t in self.sorted
        ]
        scores = np.full((n, len(cfg.numeric)), np.nan)
        for j, col in enumerate(cfg.numeric):
            values = pool[col].to_numpy(dtype="float64")
            ok = ~np.isnan(values)
            ranks = pd.Series(values[ok]).rank(method="average").to_numpy()
            scores[ok, j] = ndtri((ranks - 0.5) / ok.sum())
        self.scores = scores
        self.discrete = [*cfg.binary, *cfg.categorical]
        self.levels, codes = [], np.zeros((n, len(self.discrete)), dtype=np.int64)
        for j, col in enumerate(self.discrete):
            codes[:, j], levels = pd.factorize(pool[col], sort=True)
            self.levels.append(pd.array(levels, dtype=pool[col].dtype))
        self.codes = codes
        # the kernel's stratum: the discrete column explaining most of the numeric scores' variance (Telco:
        # streaming_movies; mlc_churn: voice_mail_plan); the kernel is per (class, stratum value)
        self.stratum = self._stratum()
        strata = codes[:, self.stratum] if self.stratum is not None else np.zeros(n, dtype=np.int64)
        n_strata = int(strata.max(initial=0)) + 1
        k = len(cfg.numeric)
        self.mean, self.root = np.zeros((2, n_strata, k)), np.zeros((2, n_strata, k, k))
        complete = ~np.isnan(scores).any(axis=1)
        for c in (0, 1):
            for s_ in range(n_strata):
                rows = scores[(y == c) & complete & (strata == s_)]
                if len(rows) < 10 * (k + 1):  # too few for a covariance: the class's
                    rows = scores[(y == c) & complete]
                self.mean[c, s_] = rows.mean(axis=0)
                w, v = np.linalg.eigh(np.atleast_2d(np.cov(rows, rowvar=False)))
                self.root[c, s_] = v * np.sqrt(np.clip(w, 0, None))  # root @ root.T = the covariance
        self.strata = strata
        self.parent = [self._parent(j) for j in range(len(self.discrete))]
        # cumulative frequencies of column j given (class, parent value): [class, parent level, level]
        self.cum = []
        for j, p in enumerate(self.parent):
            k, kp = len(self.levels[j]), len(self.levels[p]) if p is not None else 1
            counts = np.zeros((2, kp, k))
            np.add.at(counts, (y, codes[:, p] if p is not None else 0, codes[:, j]), 1)
            totals = counts.sum(axis=2, keepdims=True)
            self.cum.append(np.cumsum(counts / np.where(totals > 0, totals, 1), axis=2))
        self._fit_label_model()

    def _stratum(self) -> int | None:
        best, best_share = None, 0.0
        scores = np.nan_to_num(self.scores)
        total = ((scores - scores.mean(axis=0)) ** 2).sum()
        for j in range(len(self.discrete)):
            codes, k = self.codes[:, j], len(self.levels[j])
            counts = np.bincount(codes, minlength=k)
            sums = np.stack([np.bincount(codes, scores[:, i], minlength=k) for i in range(scores.shape[1])], 1)
            between = (sums**2 / np.maximum(counts, 1)[:, None]).sum() - len(codes) * (scores.mean(0) ** 2).sum()
            if total > 0 and between / total > best_share:
                best, best_share = j, between / total
        return best

    def _parent(self, j: int) -> int | None:
        best, best_mi = None, 0.0
        a = self.codes[:, j]
        for p in range(len(self.discrete)):
            if p == j:
                continue
            b, kb = self.codes[:, p], len(self.levels[p])
            joint = np.bincount(a * kb + b, minlength=len(self.levels[j]) * kb).reshape(-1, kb) / len(a)
            outer = joint.sum(axis=1, keepdims=True) @ joint.sum(axis=0, keepdims=True)
            nz = joint > 0
            mi = float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())
            if mi > best_mi + 1e-12:
                best, best_mi = p, mi
        return best

    def noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """One day's kernel noise, ``n`` rows: numeric normals, then per discrete column a redraw uniform and
        a level uniform, then the label's uniform (a fixed layout whatever the settings: a day reproduces)."""
        k, d = len(self.cfg.numeric), len(self.discrete)
        return np.concatenate([rng.standard_normal((n, k)), rng.random((n, 2 * d + 1))], axis=1)

    def _design(self, scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
        onehot = [codes[:, j, None] == np.arange(len(levels)) for j, levels in enumerate(self.levels)]
        return np.concatenate([np.nan_to_num(scores), *onehot], axis=1, dtype="float64")

    def _fit_label_model(self) -> None:
        design = self._design(self.scores, self.codes)
        self.base_rate = float(self.y.mean())
        if self.label_model == "boosting":
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.boosted = HistGradientBoostingClassifier(
                max_depth=4, min_samples_leaf=20, learning_rate=0.05, max_iter=200, early_stopping=False, random_state=0
            ).fit(design, self.y)
            return
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=5000).fit(design, self.y)
        coef, k = model.coef_[0], len(self.cfg.numeric)
        self.intercept, self.coef_numeric = float(model.intercept_[0]), coef[:k]
        bounds = np.cumsum([k, *(len(levels) for levels in self.levels)])
        self.coef_levels = [coef[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _logit(self, scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The label model's log-odds (for the logistic regression: its ``decision_function`` without building
        the design)."""
        if self.label_model == "boosting":
            return self.boosted.decision_function(self._design(scores, codes))
        logit = self.intercept + np.nan_to_num(scores) @ self.coef_numeric
        for j, coef in enumerate(self.coef_levels):
            logit += coef[codes[:, j]]
        return logit

    def sample(
        self, donors: pd.DataFrame, idx: np.ndarray, noise: np.ndarray, churn_rate: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """New customers around the pool rows ``idx`` (``donors``: those rows, index reset, changed in place) and
        their labels; ``churn_rate``: per row the day's prior (NaN: the pool's)."""
        k, d, h = len(self.cfg.numeric), len(self.discrete), self.h
        y, strata = self.y[idx], self.strata[idx]
        mean = self.mean[y, strata]
        e = np.einsum("nij,nj->ni", self.root[y, strata], noise[:, :k])
        z = mean + (self.scores[idx] - mean + h * e) / np.sqrt(1 + h * h)
        u = ndtr(z)
        scores = np.full_like(z, np.nan)
        for j, col in enumerate(self.cfg.numeric):
            table, n = self.sorted[j], len(self.sorted[j])
            at = np.minimum((np.nan_to_num(u[:, j]) * n).astype(np.int64), n - 1)
            missing = np.isnan(z[:, j])
            donors[col] = np.where(missing, np.nan, table[at])
            scores[:, j] = np.where(missing, np.nan, self.sorted_scores[j][at])  # the value's own mid-rank score
        redraw, pick = noise[:, k : k + d], noise[:, k + d : k + 2 * d]
        codes = self.codes[idx].copy()
        for j, col in enumerate(self.discrete):
            hit = np.flatnonzero(redraw[:, j] < self.rate)
            if not len(hit) or j == self.stratum:  # the stratum stays the donor's: the kernel was drawn in it
                continue
            p = self.parent[j]
            cum = self.cum[j][y[hit], self.codes[idx[hit], p] if p is not None else 0]
            codes[hit, j] = np.minimum((pick[hit, j, None] >= cum).sum(axis=1), cum.shape[1] - 1)
            donors[col] = self.levels[j].take(codes[:, j])
        logit = self._logit(scores, codes)
        shifted = ~np.isnan(churn_rate)
        if shifted.any():
            rate = np.clip(churn_rate[shifted], 1e-6, 1 - 1e-6)
            logit[shifted] += np.log(rate / (1 - rate)) - np.log(self.base_rate / (1 - self.base_rate))
        labels = (noise[:, k + 2 * d] < expit(logit)).astype(np.int64)
        return donors, labels


@dataclass
class BatchSimulator:
    """Draws daily batches from the held-out pool of a dataset (never its training rows): its rows
    (``customers="pool"``) or new customers like them (``"synthetic"``); None: the dataset config's
    ``simulation.customers``."""

    cfg: DatasetConfig
    rows_per_day: int = 500
    seed: int = 0
    customers: str | None = None

    def __post_init__(self) -> None:
        if self.rows_per_day < 1:
            raise ValueError(f"rows_per_day must be >= 1, got {self.rows_per_day}")
        self.customers = self.customers or self.cfg.simulation.customers
        if self.customers not in ("pool", "synthetic"):
            raise ValueError(f"customers must be 'pool' or 'synthetic', got {self.customers!r}")
        split = split_reference(load_reference(self.cfg), self.cfg)
        self.train_stats = split.train[self.cfg.numeric].agg(["mean", "std"])
        self.use_pool(split.held_out)

    def use_pool(self, pool: pd.DataFrame) -> BatchSimulator:
        """Draw from ``pool`` from now on (and fit the synthetic customers to it); returns self."""
        self.pool = pool
        self._y = target_array(pool, self.cfg)
        self.synthetic = (
            SyntheticCustomers(pool, self._y, self.cfg, self.cfg.simulation) if self.customers == "synthetic" else None
        )
        return self

    def with_seed(self, seed: int) -> BatchSimulator:
        """The same pool drawn with another seed (the pool is read once, not once per seed)."""
        other = copy.copy(self)
        other.seed = seed
        return other

    def _rngs(self, ds: date) -> tuple[np.random.Generator, np.random.Generator]:
        draw = np.random.default_rng([self.seed, ds.toordinal(), 0])
        effect = np.random.default_rng([self.seed, ds.toordinal(), 1])
        return draw, effect

    def _kernel_rng(self, ds: date) -> np.random.Generator:
        return np.random.default_rng([self.seed, ds.toordinal(), 2])

    def _draw(self, rng: np.random.Generator, churn_rate: float | None) -> np.ndarray:
        n, size = self.rows_per_day, len(self.pool)
        if churn_rate is None:
            return rng.choice(size, size=n, replace=n > size)
        pos, neg = np.flatnonzero(self._y == 1), np.flatnonzero(self._y == 0)
        n_pos = int(round(n * churn_rate))
        return np.concatenate(
            [
                rng.choice(pos, size=n_pos, replace=n_pos > len(pos)),
                rng.choice(neg, size=n - n_pos, replace=n - n_pos > len(neg)),
            ]
        )

    def day(self, ds: date, scenario: Scenario) -> DayBatch:
        return self.days([ds], scenario).batch(0)

    def days(self, dates: Sequence[date], scenario: Scenario) -> DaySpan:
        """The batches of ``dates`` in one frame, row for row those of :meth:`day` for each date.

        The draws stay per day (each day has its own random streams); the effects, the clipping and the
        ids run once over all days, since one batch per day costs more in pandas overhead than in work.
        """
        cfg, sc, k = self.cfg, self.cfg.scenarios, scenario.intensity
        actives = [scenario.days_active(ds) for ds in dates]
        families = set(scenario.families)
        idx_parts, noise_parts, kernel_parts, rates = [], [], [], []
        for ds, active in zip(dates, actives, strict=True):
            draw_rng, fx = self._rngs(ds)
            churn_rate = None
            if active is not None and "class_balance" in families:
                base = float(self._y.mean())
                churn_rate = float(np.clip(base + (sc.class_balance.target_rate - base) * k, 0.0, 1.0))
            idx = self._draw(draw_rng, churn_rate)
            idx_parts.append(idx)
            rates.append(np.nan if churn_rate is None else churn_rate)
            # The effect stream is consumed in a fixed order whatever the families, so combinations reproduce.
            noise_parts.append(fx.random((3, len(idx))))
            if self.synthetic is not None:
                kernel_parts.append(self.synthetic.noise(self._kernel_rng(ds), len(idx)))
        sizes = np.array([len(idx) for idx in idx_parts])
        day_of_row = np.repeat(np.arange(len(dates)), sizes)
        on = np.array([a is not None for a in actives], dtype=bool)[day_of_row]
        idx = np.concatenate(idx_parts)
        noise = np.concatenate(noise_parts, axis=1)
        batch = self.pool.iloc[idx].reset_index(drop=True)
        if self.synthetic is not None:
            batch, y = self.synthetic.sample(
                batch, idx, np.concatenate(kernel_parts), np.array(rates, dtype="float64")[day_of_row]
            )
        else:
            y = self._y[idx].copy()

        def shift(col: str, per_day: Callable[[int], float]) -> None:
            # each day's shift is the same Python scalar as a one-day batch adds, so sums are bit-identical
            amounts = np.array([per_day(a) if a is not None else 0.0 for a in actives])[day_of_row]
            values = batch[col].to_numpy(dtype="float64", copy=True)
            values[on] = values[on] + amounts[on]
            batch[col] = values

        if "gradual" in families:
            for col in sc.gradual.columns:
                std = self.train_stats.at["std", col]
                shift(col, lambda a, std=std: k * sc.gradual.shift_std * std * min(1.0, (a + 1) / sc.gradual.ramp_days))
        if "sudden" in families:
            shift(sc.sudden.column, lambda a: k * sc.sudden.amount)
        if "seasonal" in families:
            std = self.train_stats.at["std", sc.seasonal.column]
            shift(
                sc.seasonal.column,
                lambda a: k * sc.seasonal.amplitude_std * std * np.sin(2 * np.pi * a / sc.seasonal.period_days),
            )
        if "new_category" in families:
            hit = on & (noise[0] < min(1.0, k * sc.new_category.rate))
            batch.loc[hit, sc.new_category.column] = sc.new_category.value
        if "concept" in families:
            segment = on.copy()
            for col, value in sc.concept.segment.items():
                segment &= (batch[col] == value).to_numpy()
            flip = segment & (noise[1] < min(1.0, k * sc.concept.flip_rate))
            y[flip] = 1 - y[flip]
        for col in cfg.numeric:  # shifted values stay in the column's domain
            rule = cfg.domain.get(col)
            if rule is not None and rule.min is not None:
                batch[col] = batch[col].clip(lower=rule.min)

        days_text = [f"{ds:%Y%m%d}" for ds in dates]
        rows = [f"{i:05d}" for i in range(int(sizes.max(initial=0)))]
        suffixes = [f"{days_text[d]}-{rows[i]}" for d, n in enumerate(sizes) for i in range(n)]
        if self.synthetic is not None:  # a new customer: an id of its own, nothing of the donor's
            ids = pd.Series(suffixes, dtype=batch[cfg.id.column].dtype).radd(f"{cfg.id.prefix}N{self.seed}-")
        else:
            ids = batch[cfg.id.column].str.cat(suffixes, sep="-")
        batch[cfg.id.column] = ids
        landing = batch[[cfg.id.column, *cfg.features]]
        negative = self._negative_label()
        labels = pd.DataFrame(
            {
                cfg.id.column: ids,
                "observed_ds": np.array([ds.isoformat() for ds in dates], dtype=object)[day_of_row],
                cfg.target.column: np.where(y == 1, cfg.target.positive, negative),
            }
        )
        return DaySpan(list(dates), landing, labels, np.concatenate([[0], np.cumsum(sizes)]))

    def _negative_label(self) -> str:
        if self.cfg.target.negative is not None:
            return self.cfg.target.negative
        values = self.pool[self.cfg.target.column].unique().tolist()
        others = [v for v in values if v != self.cfg.target.positive]
        return others[0] if others else "No"


@dataclass(frozen=True)
class SimulationSummary:
    start: date
    end: date
    days: int
    scenario: str
    onset: date | None
    intensity: float
    rows_per_day: int
    label_delay: int
    seed: int
    data_url: str
    customers: str = "pool"

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))
