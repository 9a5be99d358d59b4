"""One day, one context: what every step of a day's monitoring run is handed instead of fetching it.

A :class:`DayContext` is built once per task (and once per day by :func:`churnguard.steps.run_day`) from the
batch date and the run's options. It holds the configs with this run's overrides merged once, the data root
(:class:`~churnguard.dataroot.DataRoot`), the monitoring store, the churn model's registry
(:class:`~churnguard.registry.ModelRegistry`), and the model versions pinned for the date:
resolved from the aliases the first time the date is processed and stored, then reused by every later step
and by every re-run of the date, whatever the aliases point at by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from churnguard import registry
from churnguard.config import (
    DatasetConfig,
    DriftConfig,
    ModelConfig,
    MonitoringConfig,
    load_dataset_config,
    load_drift_config,
    load_model_config,
    load_monitoring_config,
)
from churnguard.dataroot import DataRoot
from churnguard.failure.config import FailureConfig, load_failure_config
from churnguard.registry import ModelRegistry
from churnguard.results import StepResult
from churnguard.storage import CHUNK_ROWS
from churnguard.store import MonitoringStore, lease, open_store, schema
from churnguard.validation.config import ValidationConfig, load_validation_config

if TYPE_CHECKING:
    from churnguard.training import Bootstrap

log = logging.getLogger(__name__)
R = TypeVar("R", bound=StepResult)
# A batch up to this many rows is held whole by the context (read once); a larger one is only ever streamed
# from its staged copy, CHUNK_ROWS rows at a time.
IN_MEMORY_ROWS = 1_000_000


@dataclass(frozen=True)
class PinnedVersions:
    """The champion (and shadow challenger) a date is monitored with."""

    champion: int
    challenger: int | None

    def role(self, role: str) -> int | None:
        return self.champion if role == registry.CHAMPION else self.challenger


@dataclass(frozen=True)
class RunOptions:
    """What a run may change: per-run config overrides and the two switches. JSON-able for XCom."""

    overrides: dict = field(default_factory=dict)
    drift_overrides: dict = field(default_factory=dict)
    force_retrain: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {
            "overrides": self.overrides,
            "drift_overrides": self.drift_overrides,
            "force_retrain": self.force_retrain,
            "dry_run": self.dry_run,
        }


def check_run(options: RunOptions | None = None) -> None:
    """Everything a run needs, checked before it writes anything: every config with this run's overrides
    (a bad key or value is one :class:`~churnguard.config.ConfigError` line) and the MLflow server (a
    :class:`~churnguard.registry.RegistryError` within seconds, not minutes)."""
    options = options or RunOptions()
    load_dataset_config()
    load_model_config()
    load_monitoring_config(options.overrides)
    load_drift_config(options.drift_overrides)
    load_validation_config()
    load_failure_config()
    registry.check_connection()


@dataclass
class DayContext:
    """The batch date and everything a day's steps share; build with :meth:`build`."""

    ds: str
    options: RunOptions
    root: DataRoot
    store: MonitoringStore
    dataset: DatasetConfig
    model: ModelConfig
    monitoring: MonitoringConfig
    drift_config: DriftConfig  # as drift.yaml says: a run's drift overrides apply to its drift report only
    validation_config: ValidationConfig
    failure_config: FailureConfig
    registry: ModelRegistry
    holder: str = field(default_factory=lease.process_holder)  # who runs the day: see churnguard.store.lease
    _summaries: dict[tuple[int, str], Any] = field(default_factory=dict, repr=False)
    _versions: PinnedVersions | None = field(default=None, repr=False)
    _batch: pd.DataFrame | None = field(default=None, repr=False)
    _batch_rows: int | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        ds: date | str,
        options: RunOptions | None = None,
        *,
        root: DataRoot | None = None,
        store: MonitoringStore | None = None,
        holder: str | None = None,
    ) -> DayContext:
        """Configs are loaded and checked here, once: a bad key or value is one ``ConfigError`` line.
        ``holder``: the run's name for the date's lease (default: this process)."""
        options = options or RunOptions()
        model = load_model_config()
        return cls(
            ds=date.fromisoformat(str(ds)).isoformat(),
            options=options,
            root=root or DataRoot.open(),
            store=store or open_store(),
            dataset=load_dataset_config(),
            model=model,
            monitoring=load_monitoring_config(options.overrides),
            drift_config=load_drift_config(),
            validation_config=load_validation_config(),
            failure_config=load_failure_config(),
            registry=ModelRegistry(model.registered_name),
            holder=holder or lease.process_holder(),
        )

    # -- one run per date ---------------------------------------------------------------------------------
    def claim(self) -> None:
        """Take (or renew) the date's lease before a step writes; waits while another run holds the date."""
        lease.acquire(self.store, self.ds, self.holder)

    def release(self) -> None:
        """The run of the date has ended (published, rejected or failed): another run may take the date."""
        lease.release(self.store, self.ds, self.holder)

    @property
    def day(self) -> date:
        return date.fromisoformat(self.ds)

    @property
    def model_name(self) -> str:
        return self.model.registered_name

    @cached_property
    def failure_champion(self) -> tuple[Any, Any] | None:
        """``(FailureModel, VersionInfo)`` of the failure config's ``<registered_name>@champion``, or None
        when none is registered: loaded once per context (a load that raises is tried again next time)."""
        from churnguard.failure_training import load_failure_champion

        return load_failure_champion(self.failure_config)

    # -- pinned model versions ------------------------------------------------------------------------
    @property
    def versions(self) -> PinnedVersions:
        """The versions pinned for the date; the first call for a date pins the aliases' versions of now."""
        if self._versions is None:
            row = self.store.rows(schema.day_models, where={"ds": self.ds})
            if not row:
                champion = self.registry.version_by_alias(registry.CHAMPION)
                if champion is None:
                    raise LookupError(f"no '{registry.CHAMPION}' alias on {self.model_name}: run churn_bootstrap first")
                challenger = self.registry.version_by_alias(registry.CHALLENGER)
                row = [
                    self.store.add_if_absent(
                        schema.day_models,
                        {
                            "ds": self.ds,
                            "champion_version": champion.version,
                            "challenger_version": challenger.version if challenger else None,
                        },
                    )
                ]
            self._versions = PinnedVersions(row[0]["champion_version"], row[0]["challenger_version"])
            log.info(
                "%s is monitored with %s v%d%s",
                self.ds,
                self.model_name,
                self._versions.champion,
                f" (challenger v{self._versions.challenger} in shadow)" if self._versions.challenger else "",
            )
        return self._versions

    def model_summary(self, version: int, kind: str, compute: Callable[[], Any]) -> Any:
        """A summary that belongs to a model version (its reference profile, its failure-model reference):
        computed by the first task that needs it and stored with the version, read by every later one (once
        per context)."""
        if (version, kind) not in self._summaries:
            where = {"model_name": self.model_name, "model_version": version, "kind": kind}
            stored = self.store.rows(schema.model_summaries, where=where)
            self._summaries[version, kind] = (
                stored[0]["value"]
                if stored
                else self.store.add_if_absent(schema.model_summaries, {**where, "value": compute()})["value"]
            )
        return self._summaries[version, kind]

    # -- the batch, read once ---------------------------------------------------------------------------
    @property
    def batch_rows(self) -> int:
        """Rows of the day's staged batch (from its parquet footer, or the frame held)."""
        if self._batch_rows is None:
            self._batch_rows = len(self._batch) if self._batch is not None else self.root.staged_rows(self.ds)
        return self._batch_rows

    @property
    def batch_in_memory(self) -> bool:
        """The batch is small enough to be held whole (:data:`IN_MEMORY_ROWS`); else steps stream it."""
        return self.batch_rows <= IN_MEMORY_ROWS

    def batch(self) -> pd.DataFrame:
        """The day's staged batch (written by ingest), read once per context; only for a batch that fits
        (:attr:`batch_in_memory`): a larger one is a ``MemoryError`` naming :meth:`batch_chunks`."""
        if self._batch is None:
            if not self.batch_in_memory:
                raise MemoryError(
                    f"{self.ds}: {self.batch_rows} rows are more than a step may hold "
                    f"({IN_MEMORY_ROWS}): stream them with batch_chunks()"
                )
            self._batch = self.root.read_staged(self.ds)
        return self._batch

    def batch_chunks(self, rows: int = CHUNK_ROWS, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The day's staged batch as frames of at most ``rows`` rows, in order: slices of the frame held, or
        read from the staged copy one at a time."""
        if self._batch is None and not self.batch_in_memory:
            yield from self.root.read_staged_chunks(self.ds, rows, columns)
            return
        frame = self.batch() if columns is None else self.batch()[columns]
        for start in range(0, max(len(frame), 1), rows):
            yield frame.iloc[start : start + rows]

    def keep_batch(self, frame: pd.DataFrame | None, rows: int | None = None) -> None:
        """Hold the batch ingest just staged (None with its ``rows``: too large to hold)."""
        self._batch = frame
        self._batch_rows = len(frame) if frame is not None else rows

    # -- step results -------------------------------------------------------------------------------------
    def record(self, result: R) -> R:
        """Store a step's result as the day's (its class names the step); returns it."""
        self.store.upsert(schema.day_steps, [{"ds": self.ds, "step": result.step, "result": result.to_json()}])
        return result

    def result(self, kind: type[R]) -> R | None:
        """The day's recorded result of the step that makes ``kind``, or None before it ran."""
        rows = self.store.rows(schema.day_steps, where={"ds": self.ds, "step": kind.step})
        return kind.from_json(rows[0]["result"]) if rows else None

    def require(self, kind: type[R]) -> R:
        """As :meth:`result`, for a step that must have run: its absence is a LookupError naming it."""
        found = self.result(kind)
        if found is None:
            raise LookupError(f"{self.ds}: step '{kind.step}' has no result yet: run it first")
        return found


def open_bootstrap(dataset: str | None = None) -> Bootstrap:
    """What the bootstrap steps (:mod:`churnguard.training`) are handed: the configs of ``dataset`` (default:
    the configured one) and of the model, the data root, the model's registry and the monitoring store."""
    from churnguard.training import Bootstrap

    model = load_model_config()
    return Bootstrap(
        dataset=load_dataset_config(dataset),
        model=model,
        drift=load_drift_config(),
        root=DataRoot.open(),
        registry=ModelRegistry(model.registered_name),
        store=open_store(),
    )
