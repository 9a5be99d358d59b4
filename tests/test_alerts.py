"""Alerts: the episodes and notifications of churnguard.alerts over sequences of days on a real SQLite store,
and their delivery through Airflow's notifiers to real local endpoints (a webhook on loopback, aiosmtpd)."""

from __future__ import annotations

import pytest

from churnguard import alerts
from churnguard.alerts import CRITICAL, DECISION, INFO, WARNING, Alert


@pytest.fixture
def store():
    from churnguard.store import open_store

    return open_store()


def day(n: int) -> str:
    return f"2026-09-{n:02d}"


def see(store, n: int, severity: str | None, kind: str = DECISION, message: str | None = None, **kw):
    """Day ``n`` found ``kind`` at ``severity`` (None: clear); the notification it called for."""
    alert = Alert(day(n), kind, severity, message or f"{kind} {severity} on day {n}") if severity else None
    return alerts.observe(store, day(n), kind, alert, **kw)


def changes(store) -> list[tuple[str, str, str]]:
    return [(n["ds"], n["change"], n["severity"]) for n in alerts.notifications(store)]


# --- de-duplication over days ----------------------------------------------------------------------------
def test_consecutive_days_are_one_episode_notified_once_then_on_escalation_and_clear(store):
    opened = see(store, 1, WARNING, message="decision=alert: moderate drift (top tenure)")
    assert (opened.change, opened.severity, opened.ds) == ("opened", WARNING, day(1))
    assert see(store, 2, WARNING) is None  # extended: nothing new to say
    escalated = see(store, 3, CRITICAL)
    assert (escalated.change, escalated.severity, escalated.first_ds) == ("escalated", CRITICAL, day(1))
    assert see(store, 4, WARNING) is None and see(store, 5, CRITICAL) is None  # down and up again: known
    cleared = see(store, 6, None)
    assert (cleared.change, cleared.severity) == ("cleared", INFO)
    assert "decision cleared on 2026-09-06" in cleared.message
    assert see(store, 7, None) is None  # still clear: nothing

    (episode,) = alerts.episodes(store)
    assert (episode["first_ds"], episode["last_ds"], episode["state"], episode["cleared_ds"], episode["severity"]) \
        == (day(1), day(5), "cleared", day(6), CRITICAL)
    assert changes(store) == [(day(1), "opened", WARNING), (day(3), "escalated", CRITICAL),
                              (day(6), "cleared", INFO)]
    rows = store.rows("alerts", order_by="ds")
    assert [(r["ds"], r["severity"], r["episode_id"]) for r in rows] == [
        (day(n), s, episode["id"]) for n, s in ((1, WARNING), (2, WARNING), (3, CRITICAL), (4, WARNING),
                                                (5, CRITICAL))]

    reopened = see(store, 8, WARNING)  # after a clear: a new episode, notified again
    assert reopened.change == "opened" and reopened.episode_id != episode["id"]


def test_a_rerun_of_any_day_changes_and_sends_nothing_new(store):
    for n, severity in ((1, WARNING), (2, CRITICAL), (3, None)):
        see(store, n, severity)
    before = (alerts.episodes(store), changes(store), store.rows("alerts"))
    for n, severity in ((1, WARNING), (2, CRITICAL), (3, None), (3, None), (2, CRITICAL)):
        assert see(store, n, severity) is None, n
    after = (alerts.episodes(store), changes(store), store.rows("alerts"))
    assert [e for e in after[0]] == before[0] and after[1] == before[1]
    assert [(r["ds"], r["severity"], r["episode_id"]) for r in after[2]] == \
        [(r["ds"], r["severity"], r["episode_id"]) for r in before[2]]


def test_a_rerun_of_the_opening_day_after_a_crash_keeps_the_one_pending_notification(store):
    """The day recorded its alert (pending) and died before delivering: the re-run sends nothing new, and
    the pending one is still there for the re-run's delivery."""
    first = see(store, 1, CRITICAL)
    assert see(store, 1, CRITICAL) is None
    assert [n.id for n in alerts.pending(store)] == [first.id]


def test_a_backfill_of_past_days_records_them_and_notifies_nothing(store):
    see(store, 10, WARNING)
    see(store, 11, WARNING)
    see(store, 12, None)
    sent = changes(store)
    # days before the newest observed one: a backfill (even of days never seen before, and critical ones)
    assert see(store, 5, CRITICAL) is None
    assert see(store, 11, CRITICAL) is None
    assert see(store, 9, None) is None
    assert changes(store) == sent
    (episode,) = alerts.episodes(store)
    assert (episode["first_ds"], episode["last_ds"], episode["state"]) == (day(10), day(11), "cleared")
    rows = {r["ds"]: r for r in store.rows("alerts")}
    assert rows[day(5)]["episode_id"] is None and rows[day(5)]["severity"] == CRITICAL  # outside any episode
    assert rows[day(11)]["episode_id"] == episode["id"] and rows[day(11)]["severity"] == CRITICAL


def test_kinds_are_independent_and_events_notify_each_time_once(store):
    assert see(store, 1, WARNING).change == "opened"
    assert see(store, 1, CRITICAL, kind=alerts.VALIDATION).change == "opened"
    assert see(store, 2, None, kind=alerts.VALIDATION).change == "cleared"
    assert see(store, 2, WARNING) is None  # the decision episode goes on
    first = see(store, 3, INFO, kind=alerts.PROMOTION)
    assert first.change == "opened" and see(store, 3, INFO, kind=alerts.PROMOTION) is None  # re-run
    assert see(store, 4, INFO, kind=alerts.PROMOTION).change == "opened"  # the next promotion is news
    assert [e["state"] for e in alerts.episodes(store, kind=alerts.PROMOTION)] == ["cleared", "cleared"]


def test_a_clear_of_an_episode_nobody_was_told_of_or_without_notify_cleared_is_silent(store):
    see(store, 1, WARNING)
    assert see(store, 2, None, notify_cleared=False) is None
    assert alerts.episodes(store)[0]["state"] == "cleared"


def test_a_claimed_notification_is_sent_at_most_once(store):
    note = see(store, 1, CRITICAL)
    assert alerts.claim(store, note) is True
    assert alerts.claim(store, note) is False  # a second deliverer, or a retry after a crash mid-send
    assert alerts.pending(store) == []
    assert alerts.finish(store, note, {"slack": "HTTP 500"}) == "failed"
    (row,) = alerts.notifications(store)
    assert row["state"] == "failed" and row["channels"] == {"slack": "HTTP 500"}


def test_the_decision_maps_to_severities():
    assert [alerts.decision_severity(d) for d in ("healthy", "alert", "retrain")] == [None, WARNING, CRITICAL]
    with pytest.raises(ValueError, match="severity"):
        Alert(day(1), DECISION, "retrain", "m")
