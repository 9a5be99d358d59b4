"""The daily monitoring schedule: one run per day's batch, at midnight UTC after the day, up to an optional
last day.

A DAG's ``end_date`` would also end the schedule, but Airflow gives every task that end date, and a manual
run dated after it gets no task instances at all: a green run that did nothing. Ending the *schedule* in the
timetable instead leaves manual runs (with ``batch_date``, or a logical date) free to run any day.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable
from pendulum import UTC


class DailyBatches(CronDataIntervalTimetable):
    """Daily data intervals (``0 0 * * *`` UTC); the scheduler creates no run for a day after ``last_day``
    (a backfill, which names its own range, and manual runs still may)."""

    def __init__(self, last_day: str | None = None) -> None:
        super().__init__("0 0 * * *", UTC)
        self.last_day = date.fromisoformat(last_day).isoformat() if last_day else None
        self.description = "daily at 00:00 UTC" + (f", batches up to {self.last_day}" if self.last_day else "")

    @property
    def summary(self) -> str:
        return f"daily until {self.last_day}" if self.last_day else "daily"

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> DailyBatches:
        return cls(data.get("last_day"))

    def serialize(self) -> dict[str, Any]:
        return {"last_day": self.last_day}

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        info = super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
        if info is None or self.last_day is None or restriction.latest is not None:
            return info  # a backfill bounds its own range: it may name days after the schedule's last
        last = datetime.fromisoformat(self.last_day).replace(tzinfo=UTC)
        return info if info.data_interval.start <= last else None
