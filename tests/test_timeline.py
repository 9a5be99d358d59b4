"""The timeline's "first drift" is the first day of a sustained drift, not a lone false alarm."""

from __future__ import annotations

import pytest

from churnguard.status import first_sustained_drift


def days(*severities: str, start: int = 1) -> list[dict]:
    return [{"ds": f"2026-09-{start + i:02d}", "drift": s} for i, s in enumerate(severities)]


def test_a_lone_false_alarm_before_the_onset_is_not_the_first_drift():
    seen = days("stable", "moderate", "stable", "stable", "moderate", "critical", "critical", "stable")
    assert first_sustained_drift(seen, 3) == "2026-09-05"


def test_a_gap_in_the_monitored_days_breaks_the_streak():
    seen = days("moderate", "moderate") + days("moderate", "moderate", "moderate", start=10)
    assert first_sustained_drift(seen, 3) == "2026-09-10"


@pytest.mark.parametrize(("sustained", "expected"), [(1, "2026-09-02"), (2, "2026-09-02"), (4, None)])
def test_the_number_of_days_is_configurable(sustained, expected):
    assert first_sustained_drift(days("stable", "critical", "moderate", "stable"), sustained) == expected
