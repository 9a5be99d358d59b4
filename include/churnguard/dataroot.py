"""The data root's layout: every folder and key under ``CHURNGUARD_DATA_URL``, spelled here and nowhere else.

``DataRoot`` is to the layout what a provider's hook is to its service: callers say *what* they read or
write (a day's batch, its scores, a report) and never build a key. The storage underneath
(:mod:`churnguard.storage`, ``file://`` or ``s3://``) makes each write atomic.

==========================================  ====================================================================
key                                          what
==========================================  ====================================================================
``landing/ds=YYYY-MM-DD/*.parquet``          the day's batch as delivered (other tools write here)
``labels/ds=YYYY-MM-DD/*.parquet``           label deliveries, by arrival date (``observed_ds`` names the day)
``staged/ds=…/part-00000.parquet``           the batch as ingested: one file, read by every later step
``scores/ds=…/part-00000.parquet``           ids, segment values, champion (and shadow challenger) scores and versions
``reports/ds=…/<name>``                      validation, drift and summary reports of the day
``reports/_assets/<name>``                   files every day's report shares (plotly.js)
``quarantine/ds=…/``                         a rejected batch, moved whole out of ``landing``
``quarantine/labels/ds=…/``                  a rejected label delivery
``reference/<dataset>/<split>.parquet``      the reference splits a model is trained and evaluated on
``reference/<dataset>/profiles/<v>.json``    drift reference profiles, by profile version
``failure/…``                                the failure model's trajectories, datasets and reference
``simulator/manifest.json``                  what ``churnguard simulate`` wrote
==========================================  ====================================================================
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import date

import pandas as pd

from churnguard.storage import (
    CHUNK_ROWS,
    PartitionNotFound,
    Storage,
    frame_to_parquet_bytes,
    open_storage,
    partition_key,
)

LANDING, LABELS, STAGED, SCORES = "landing", "labels", "staged", "scores"
REPORTS, QUARANTINE, REFERENCE = "reports", "quarantine", "reference"
LABELS_QUARANTINE = f"{QUARANTINE}/{LABELS}"  # beside quarantine/ds=…, which list_partitions never mistakes it for
ASSETS = f"{REPORTS}/_assets"
log = logging.getLogger(__name__)


class DataRoot:
    """Typed access to the data root's areas. Build with :meth:`open` (the configured root) or around a
    :class:`~churnguard.storage.Storage`."""

    def __init__(self, storage: Storage):
        self.storage = storage

    @classmethod
    def open(cls, url: str | None = None) -> DataRoot:
        return cls(open_storage(url))

    @property
    def url(self) -> str:
        return self.storage.url

    def uri(self, key: str) -> str:
        return self.storage.uri(key)

    def sweep_tmp(self) -> int:
        return self.storage.sweep_tmp()

    def inventory(self) -> dict[str, dict]:
        """The incoming areas (batches, labels): daily partitions, first and last day, and where they are."""
        out = {}
        for area in (LANDING, LABELS):
            days = self.storage.list_partitions(area)
            out[area] = {
                "partitions": len(days),
                "first": days[0].isoformat() if days else None,
                "last": days[-1].isoformat() if days else None,
                "uri": self.uri(area),
            }
        return out

    # -- the day's batch: landing, staged copy, quarantine ---------------------------------------------
    @staticmethod
    def batch_key(ds: date | str) -> str:
        return partition_key(LANDING, ds)

    def batch_uri(self, ds: date | str) -> str:
        return self.uri(self.batch_key(ds))

    def batch_landed(self, ds: date | str) -> bool:
        return self.storage.partition_exists(LANDING, ds)

    def batch_days(self) -> list[date]:
        return self.storage.list_partitions(LANDING)

    def read_batch(self, ds: date | str) -> pd.DataFrame:
        """The landed batch as delivered (``PartitionNotFound`` if it never landed or was quarantined)."""
        return self.storage.read_partition(LANDING, ds)

    def write_batch(self, ds: date | str, frame: pd.DataFrame) -> str:
        return self.storage.write_partition(LANDING, ds, frame)

    def stage_batch(self, ds: date | str, frame: pd.DataFrame) -> str:
        """The ingested batch as one file, which validation, scoring and drift read instead of ``landing``."""
        return self.storage.write_partition(STAGED, ds, frame)

    def stage_batch_chunks(self, ds: date | str, chunks: Iterable[pd.DataFrame]) -> str:
        """:meth:`stage_batch` from chunks, streamed: never the whole batch in memory."""
        return self.storage.write_partition_chunks(STAGED, ds, chunks)

    def read_staged(self, ds: date | str) -> pd.DataFrame:
        return self.storage.read_partition(STAGED, ds)

    def read_staged_chunks(
        self, ds: date | str, rows: int = CHUNK_ROWS, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        return self.storage.read_partition_chunks(STAGED, ds, rows, columns)

    def staged_rows(self, ds: date | str) -> int:
        return self.storage.partition_rows(STAGED, ds)

    def quarantine_key(self, ds: date | str) -> str:
        return partition_key(QUARANTINE, ds)

    def batch_quarantined(self, ds: date | str) -> bool:
        return self.storage.exists(self.quarantine_key(ds))

    def quarantine_batch(self, ds: date | str) -> str:
        """Move the landing partition to ``quarantine/`` (one step) and drop its staged copy. A batch another
        run moved there first is quarantined already: not an error."""
        uri = self._move_once(LANDING, ds, QUARANTINE)
        self.drop_staged(ds)
        return uri

    def _move_once(self, area: str, ds: date | str, to_area: str) -> str:
        try:
            return self.storage.move_partition(area, ds, to_area)
        except PartitionNotFound:
            if not self.storage.list_keys(partition_key(to_area, ds)):
                raise
            log.info("%s was moved to %s by another run", self.uri(partition_key(area, ds)), to_area)
            return self.uri(partition_key(to_area, ds))

    def drop_staged(self, ds: date | str) -> None:
        if self.storage.list_keys(partition_key(STAGED, ds)):
            self.storage.delete_folder(partition_key(STAGED, ds))

    # -- labels ----------------------------------------------------------------------------------------
    @staticmethod
    def labels_key(ds: date | str) -> str:
        return partition_key(LABELS, ds)

    def write_labels(self, ds: date | str, frame: pd.DataFrame) -> str:
        return self.storage.write_partition(LABELS, ds, frame)

    def label_days(self, since: date | None = None, until: date | None = None) -> list[date]:
        """Arrival dates of the label deliveries in ``since``..``until`` (either end open)."""
        return [
            d
            for d in self.storage.list_partitions(LABELS)
            if (since is None or d >= since) and (until is None or d <= until)
        ]

    def labels_quarantine_uri(self, ds: date | str) -> str:
        return self.uri(partition_key(LABELS_QUARANTINE, ds))

    def quarantine_labels(self, ds: date | str) -> str:
        return self._move_once(LABELS, ds, LABELS_QUARANTINE)

    # -- scores ----------------------------------------------------------------------------------------
    def write_scores(self, ds: date | str, frame: pd.DataFrame) -> str:
        return self.storage.write_partition(SCORES, ds, frame)

    def write_scores_chunks(self, ds: date | str, chunks: Iterable[pd.DataFrame]) -> str:
        return self.storage.write_partition_chunks(SCORES, ds, chunks)

    def read_scores_chunks(
        self, ds: date | str, rows: int = CHUNK_ROWS, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        return self.storage.read_partition_chunks(SCORES, ds, rows, columns)

    def read_scores(self, ds: date | str) -> pd.DataFrame | None:
        """The day's scores, or None when it was never scored."""
        try:
            return self.storage.read_partition(SCORES, ds)
        except PartitionNotFound:
            return None

    def scored_days(self) -> set[str]:
        return {d.isoformat() for d in self.storage.list_partitions(SCORES)}

    # -- reports ---------------------------------------------------------------------------------------
    @staticmethod
    def report_key(ds: date | str, name: str) -> str:
        return f"{partition_key(REPORTS, ds)}/{name}"

    def report_uri(self, ds: date | str, name: str) -> str:
        return self.uri(self.report_key(ds, name))

    def write_report(self, ds: date | str, name: str, data: bytes) -> str:
        return self.storage.write_bytes(self.report_key(ds, name), data)

    def read_report(self, ds: date | str, name: str) -> bytes:
        return self.storage.read_bytes(self.report_key(ds, name))

    def report_exists(self, ds: date | str, name: str) -> bool:
        return self.storage.exists(self.report_key(ds, name))

    @staticmethod
    def asset_key(name: str) -> str:
        return f"{ASSETS}/{name}"

    @staticmethod
    def asset_src(name: str) -> str:
        """An asset as a day's report page links it (relative, so the pages work from any host)."""
        return f"../{ASSETS.rpartition('/')[2]}/{name}"

    def ensure_asset(self, name: str, content: Callable[[], bytes]) -> str:
        """Write the shared asset ``name`` (``content()``) unless it is there already; returns its URI."""
        key = self.asset_key(name)
        if not self.storage.exists(key):
            self.storage.write_bytes(key, content())
        return self.uri(key)

    # -- reference data and profiles -------------------------------------------------------------------
    @staticmethod
    def reference_key(dataset: str, split: str) -> str:
        return f"{REFERENCE}/{dataset}/{split}.parquet"

    def write_reference(self, dataset: str, split: str, frame: pd.DataFrame) -> str:
        return self.storage.write_bytes(self.reference_key(dataset, split), frame_to_parquet_bytes(frame))

    def read_reference(self, dataset: str, split: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.storage.read_bytes(self.reference_key(dataset, split))))

    def write_profile(self, dataset: str, version: str, data: bytes) -> str:
        return self.storage.write_bytes(f"{REFERENCE}/{dataset}/profiles/{version}.json", data)

    # -- the failure model's tables and the simulator's manifest ---------------------------------------
    @staticmethod
    def failure_key(kind: str, version: str, suffix: str) -> str:
        """``failure/<kind>/<version><suffix>``: ``reference`` (.json), ``trajectories`` and ``datasets``."""
        return f"failure/{kind}/{version}{suffix}"

    def write_manifest(self, data: bytes) -> str:
        return self.storage.write_bytes("simulator/manifest.json", data)
