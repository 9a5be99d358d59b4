"""Daily customer batches drawn from held-out reference rows, with drift scenarios.

Each simulated day ``d`` lands its batch (features + ``customer_id``) and, ``label_delay`` days later, a
label delivery dated ``d+delay`` (``customer_id``, ``observed_ds``, target), through the data root. A day
depends only on
``(scenario, seed, d)``: the customers are drawn from a random stream keyed by ``(seed, d)`` and the
scenario's effect from a second stream, so the same customers appear under every scenario (effects are
directly comparable) and any sub-range re-simulates to byte-identical partitions (backfills reproduce).

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
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from churnguard.config import DatasetConfig, load_dataset_config
from churnguard.data import load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.progress import progress

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
            raise ValueError(f"scenario '{name}': unknown family {unknown or name!r}; choose from "
                             f"{', '.join(SCENARIOS)} (combine with '+')")
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
        return DayBatch(self.dates[i], self.landing.iloc[rows].reset_index(drop=True),
                        self.labels.iloc[rows].reset_index(drop=True))


@dataclass
class BatchSimulator:
    """Draws daily batches from the held-out pool of a dataset (never its training rows)."""

    cfg: DatasetConfig = field(default_factory=load_dataset_config)
    rows_per_day: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rows_per_day < 1:
            raise ValueError(f"rows_per_day must be >= 1, got {self.rows_per_day}")
        split = split_reference(load_reference(self.cfg), self.cfg)
        self.pool = split.held_out
        self.train_stats = split.train[self.cfg.numeric].agg(["mean", "std"])
        self._y = target_array(self.pool, self.cfg)

    def with_seed(self, seed: int) -> BatchSimulator:
        """The same pool drawn with another seed (the pool is read once, not once per seed)."""
        other = copy.copy(self)
        other.seed = seed
        return other

    def _rngs(self, ds: date) -> tuple[np.random.Generator, np.random.Generator]:
        draw = np.random.default_rng([self.seed, ds.toordinal(), 0])
        effect = np.random.default_rng([self.seed, ds.toordinal(), 1])
        return draw, effect

    def _draw(self, rng: np.random.Generator, churn_rate: float | None) -> np.ndarray:
        n, size = self.rows_per_day, len(self.pool)
        if churn_rate is None:
            return rng.choice(size, size=n, replace=n > size)
        pos, neg = np.flatnonzero(self._y == 1), np.flatnonzero(self._y == 0)
        n_pos = int(round(n * churn_rate))
        return np.concatenate([
            rng.choice(pos, size=n_pos, replace=n_pos > len(pos)),
            rng.choice(neg, size=n - n_pos, replace=n - n_pos > len(neg)),
        ])

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
        idx_parts, noise_parts = [], []
        for ds, active in zip(dates, actives, strict=True):
            draw_rng, fx = self._rngs(ds)
            churn_rate = None
            if active is not None and "class_balance" in families:
                base = float(self._y.mean())
                churn_rate = float(np.clip(base + (sc.class_balance.target_rate - base) * k, 0.0, 1.0))
            idx = self._draw(draw_rng, churn_rate)
            idx_parts.append(idx)
            # The effect stream is consumed in a fixed order whatever the families, so combinations reproduce.
            noise_parts.append(fx.random((3, len(idx))))
        sizes = np.array([len(idx) for idx in idx_parts])
        day_of_row = np.repeat(np.arange(len(dates)), sizes)
        on = np.array([a is not None for a in actives], dtype=bool)[day_of_row]
        idx = np.concatenate(idx_parts)
        noise = np.concatenate(noise_parts, axis=1)
        batch = self.pool.iloc[idx].reset_index(drop=True)
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
                shift(col, lambda a, std=std: k * sc.gradual.shift_std * std
                      * min(1.0, (a + 1) / sc.gradual.ramp_days))
        if "sudden" in families:
            shift(sc.sudden.column, lambda a: k * sc.sudden.amount)
        if "seasonal" in families:
            std = self.train_stats.at["std", sc.seasonal.column]
            shift(sc.seasonal.column, lambda a: k * sc.seasonal.amplitude_std * std
                  * np.sin(2 * np.pi * a / sc.seasonal.period_days))
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
        ids = batch[cfg.id.column].str.cat(suffixes, sep="-")
        batch[cfg.id.column] = ids
        landing = batch[[cfg.id.column, *cfg.features]]
        negative = self._negative_label()
        labels = pd.DataFrame({
            cfg.id.column: ids,
            "observed_ds": np.array([ds.isoformat() for ds in dates], dtype=object)[day_of_row],
            cfg.target.column: np.where(y == 1, cfg.target.positive, negative),
        })
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

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


def simulate(
    start: date,
    days: int,
    scenario: Scenario | str = "none",
    *,
    rows_per_day: int = 500,
    label_delay: int = 7,
    seed: int = 0,
    root: DataRoot | None = None,
    cfg: DatasetConfig | None = None,
) -> SimulationSummary:
    """Write ``days`` daily landing partitions from ``start`` and their labels ``label_delay`` days later."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if label_delay < 0:
        raise ValueError(f"label_delay must be >= 0, got {label_delay}")
    scenario = Scenario.parse(scenario) if isinstance(scenario, str) else scenario
    root = root or DataRoot.open()
    sim = BatchSimulator(cfg or load_dataset_config(), rows_per_day=rows_per_day, seed=seed)
    dates = [start + timedelta(days=i) for i in range(days)]
    for ds in progress(dates, len(dates), f"simulate {scenario.name}"):
        batch = sim.day(ds, scenario)
        root.write_batch(ds, batch.landing)
        root.write_labels(ds + timedelta(days=label_delay), batch.labels)
    summary = SimulationSummary(start, dates[-1], days, scenario.name, scenario.onset, scenario.intensity,
                                rows_per_day, label_delay, seed, root.url)
    root.write_manifest(json.dumps(summary.to_dict(), indent=2).encode())
    return summary
