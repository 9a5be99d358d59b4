"""The timeline's "first drift" is the first day of a sustained drift, not a lone false alarm."""

from __future__ import annotations

import pytest

from churnguard.status import first_sustained_drift
from churnguard.store import schema


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


# -- the early warning and the change point, on a store written as the daily run writes it -----------------


def monitored(risks: list[float | None], reasons: dict[str, list[str]], start: str = "2026-09-20") -> None:
    """One ``daily_runs`` row a day from ``start`` with these failure risks (``reasons`` by day)."""
    from datetime import date, timedelta

    from churnguard.store import open_store

    first = date.fromisoformat(start)
    rows = []
    for i, risk in enumerate(risks):
        ds = (first + timedelta(days=i)).isoformat()
        rows.append(
            {
                "ds": ds,
                "dataset": "telco",
                "rows": 500,
                "validation_status": "pass",
                "drift_severity": "critical",
                "drift_share": 0.11,
                "failure_risk": risk,
                "champion_version": 1,
                "decision": "retrain" if ds in reasons else "alert",
                "reasons": reasons.get(ds, []),
                "promoted": False,
            }
        )
    open_store().upsert(schema.daily_runs, rows)


def retrained(ds: str, **result) -> None:
    from churnguard.store import open_store

    open_store().upsert(
        schema.day_steps, [{"ds": ds, "step": "retrain", "result": {"ds": ds, "dry_run": False, **result}}]
    )


FAILED = {
    "2026-10-01": [
        "critical drift (share drifted 0.11)",
        "measured failure on 2026-09-24, 2026-09-25",
        "failure risk 0.91 >= 0.8",
    ]
}


def test_the_risk_alert_before_the_labels_confirmed_the_failure_is_an_early_warning_with_its_lead():
    from churnguard.status import format_timeline, timeline

    # risk crosses 0.5 on 09-23 (0.56), dips once (09-26: 0.41), the labels confirm on 10-01
    monitored([0.10, 0.32, 0.48, 0.56, 0.71, 0.66, 0.41, 0.82, 0.88, 0.90, 0.93, 0.91, 0.95], FAILED)
    tl = timeline()
    warning = tl["milestones"]["early_warning"]
    assert warning == {
        "risk_warn": 0.5,
        "alert_ds": "2026-09-23",
        "alert_risk": 0.56,
        "confirmed_ds": "2026-10-01",
        "failed_ds": "2026-09-24",
        "lead_days": 8,
        "alert_days": [7, 8],
    }
    assert (
        "early warning: failure risk 0.56 >= 0.5 (decision.risk_warn) on 2026-09-23; the labels confirmed "
        "the failure (the customers of 2026-09-24) on 2026-10-01: 8 days ahead (the risk was at or above "
        "0.5 on 7 of those 8 days)"
    ) in format_timeline(tl).splitlines()


def test_a_risk_that_rose_with_the_labels_is_said_to_give_no_early_warning():
    from churnguard.status import format_timeline, timeline

    # the demo before issue #12: the risk reached 0.5 on the day the labels confirmed the failure
    monitored([0.10, 0.14, 0.25, 0.31, 0.22, 0.30, 0.28, 0.33, 0.40, 0.45, 0.42, 0.91, 0.97], FAILED)
    tl = timeline()
    assert tl["milestones"]["early_warning"]["lead_days"] == 0
    assert tl["milestones"]["early_warning"]["alert_days"] is None
    assert (
        "no early warning: the failure risk 0.91 >= 0.5 (decision.risk_warn) on 2026-10-01, the same day "
        "the labels confirmed the failure (the customers of 2026-09-24) on 2026-10-01"
    ) in format_timeline(tl).splitlines()


@pytest.mark.parametrize(
    ("risks", "reasons", "line"),
    [
        (
            [0.1, 0.2, None, 0.3],
            {},
            "no early warning: the failure risk never reached 0.5 (decision.risk_warn); "
            "the labels confirmed no failure",
        ),
        (
            [0.1, 0.6, 0.2, 0.3],
            {},
            "early warning: failure risk 0.60 >= 0.5 (decision.risk_warn) on 2026-09-21; "
            "the labels confirmed no failure (none measured)",
        ),
        (
            [0.1, 0.2, 0.3, 0.7],
            {"2026-09-22": ["measured failure on 2026-09-15"]},
            "no early warning: the failure risk 0.70 >= 0.5 (decision.risk_warn) on 2026-09-23, 1 day(s) after the "
            "labels confirmed the failure (the customers of 2026-09-15) on 2026-09-22",
        ),
    ],
)
def test_the_early_warning_line_says_plainly_when_there_was_none(risks, reasons, line):
    from churnguard.status import format_timeline, timeline

    monitored(risks, reasons)
    assert line in format_timeline(timeline()).splitlines()


WAITING = "waiting for post-change labels: {} labelled day(s) since the change on {}, retrain.min_post_change_days is 3"


def test_the_change_point_is_shown_with_the_retrain_that_used_it_and_those_that_waited():
    from churnguard.status import format_timeline, timeline

    monitored([0.2] * 15, FAILED)
    retrained("2026-09-20", change_day=None, registered=True, version=2)  # on drift: no change point
    retrained("2026-10-01", change_day="2026-09-24", registered=False, rejected=WAITING.format(1, "2026-09-24"))
    retrained("2026-10-02", change_day="2026-09-24", registered=False, rejected=WAITING.format(2, "2026-09-24"))
    retrained("2026-10-03", change_day="2026-09-24", registered=True, version=3)
    points = timeline()["milestones"]["change_points"]
    assert points == [
        {
            "change_day": "2026-09-24",
            "retrains": [
                {"ds": "2026-10-01", "version": None, "outcome": "waiting for post-change labels"},
                {"ds": "2026-10-02", "version": None, "outcome": "waiting for post-change labels"},
                {"ds": "2026-10-03", "version": 3, "outcome": "registered"},
            ],
        }
    ]
    assert (
        "change point: 2026-09-24 (used by the retrain of 2026-10-03: challenger v3 validated on labelled days "
        "from it on; before it: 2026-10-01 waiting for post-change labels; 2026-10-02 waiting for post-change "
        "labels)"
    ) in format_timeline(timeline()).splitlines()


def test_change_points_that_move_with_every_retrain_are_one_line():
    from churnguard.status import format_timeline, timeline

    # each day's retrain takes that day's newly measured failure as the change: never 3 labelled days after it
    monitored([0.9] * 15, FAILED)
    for day in range(1, 5):
        change = f"2026-09-{23 + day}"
        retrained(f"2026-10-{day:02d}", change_day=change, registered=False, rejected=WAITING.format(1, change))
    lines = format_timeline(timeline()).splitlines()
    assert (
        "change points without a registered challenger: 4, from 2026-09-24 to 2026-09-27 (retrains of "
        "2026-10-01 .. 2026-10-04: waiting for post-change labels)"
    ) in lines
    assert not [line for line in lines if line.startswith("change point:")]


def test_a_change_point_no_challenger_came_from_says_why():
    from churnguard.status import format_timeline, timeline

    monitored([0.9] * 15, FAILED)
    retrained("2026-10-03", change_day="2026-09-24", registered=False, rejected="failed gate(s): beats_champion")
    assert (
        "change point: 2026-09-24 (no challenger registered from it: 2026-10-03 failed gate(s))"
        in format_timeline(timeline()).splitlines()
    )
