"""Simulated days landed in the data root: what ``churnguard simulate`` runs.

:class:`~churnguard.simulate.BatchSimulator` draws each day's batch and labels; :func:`simulate` writes the
batch of day ``d`` to the landing area and its labels as the delivery of ``d + label_delay``, then the run's
manifest.

Example::

    simulate(date(2026, 9, 1), 60, "gradual", rows_per_day=500, label_delay=7, seed=0, root=root, cfg=dataset_cfg)
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from churnguard.config import DatasetConfig
from churnguard.dataroot import DataRoot
from churnguard.progress import progress
from churnguard.simulate import BatchSimulator, Scenario, SimulationSummary


def simulate(
    start: date,
    days: int,
    scenario: Scenario | str = "none",
    *,
    rows_per_day: int = 500,
    label_delay: int = 7,
    seed: int = 0,
    root: DataRoot,
    cfg: DatasetConfig,
) -> SimulationSummary:
    """Write ``days`` daily landing partitions from ``start`` and their labels ``label_delay`` days later, to
    ``root``, drawn from the dataset of ``cfg``."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if label_delay < 0:
        raise ValueError(f"label_delay must be >= 0, got {label_delay}")
    scenario = Scenario.parse(scenario) if isinstance(scenario, str) else scenario
    sim = BatchSimulator(cfg, rows_per_day=rows_per_day, seed=seed)
    dates = [start + timedelta(days=i) for i in range(days)]
    for ds in progress(dates, len(dates), f"simulate {scenario.name}"):
        batch = sim.day(ds, scenario)
        root.write_batch(ds, batch.landing)
        root.write_labels(ds + timedelta(days=label_delay), batch.labels)
    summary = SimulationSummary(
        start,
        dates[-1],
        days,
        scenario.name,
        scenario.onset,
        scenario.intensity,
        rows_per_day,
        label_delay,
        seed,
        root.url,
        sim.customers,
    )
    root.write_manifest(json.dumps(summary.to_dict(), indent=2).encode())
    return summary
