"""Alerts: what a day found, grouped into episodes, and what to notify (no Airflow here: delivery is
``churnguard_airflow.notify``).

A step reports each condition it checks with :func:`observe` (``Alert`` when it holds, ``None`` when the
day found it cleared). Severity is ``info`` / ``warning`` / ``critical`` (:func:`decision_severity` maps the
daily decision: ``healthy`` clears, ``alert`` warns, ``retrain`` is critical).

De-duplication, per condition ``kind`` (``decision``, ``validation``, ``label_delivery``, ``run_failed``,
``deadline``; ``promotion`` is an event):

- an alert with no open episode of its kind opens one and notifies (``opened``);
- an alert while the episode is open extends it (``last_ds``, message, the day's row): no notification,
  unless its severity is above every severity notified in the episode (``escalated``, once per severity);
- a clear ends the open episode (``cleared``, one ``info`` notification when ``notify_cleared`` and the
  episode was notified);
- ``run_failed`` and ``deadline`` (the run's own conditions, raised by Airflow callbacks) are kept in the
  episodes only: the day's ``alerts`` rows are what the monitoring steps found;
- a day older than the newest day already observed for the kind (a backfill, a re-run of an older date)
  is recorded (its ``alerts`` row, in the episode that covers it) and changes and notifies nothing; a re-run
  of the newest day finds the episode it already extended: nothing new to send.

Acknowledging (:func:`acknowledge`, the Alerts page's button) records who took an episode on and when, once
(the first acknowledgement stays). It says "someone is on it" at the episode's severity: while the episode stays
open at it nothing more is notified; an escalation is notified and takes the acknowledgement back (a critical
condition someone took on as a warning needs taking on again); its clear is still notified (with
``notify_cleared``), so the one who took it on hears it is over; a new episode of the kind after the clear is
unacknowledged and notified again. A notification already recorded (pending) is still sent.

Notifications are rows of ``alert_notifications``, at most one per (episode, change, severity) (a unique key):
recorded ``pending`` in the transaction that changes the episode, then :func:`claim` moves one to
``claimed`` atomically before it is sent and :func:`finish` records the outcome (``sent``, ``failed``,
``skipped`` without channels). A crash between the claim
and the outcome leaves it ``claimed``: it is never sent again (at most once; the row says the delivery is
unknown). A crash before the claim leaves it ``pending``, sent by the next delivery (the day's re-run).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, insert, select, update

from churnguard.crashpoints import crash_point
from churnguard.store import MonitoringStore, exclusive, schema

log = logging.getLogger(__name__)

INFO, WARNING, CRITICAL = "info", "warning", "critical"
RANK = {INFO: 0, WARNING: 1, CRITICAL: 2}
DECISION, VALIDATION, LABEL_DELIVERY, RUN_FAILED, DEADLINE, PROMOTION = (
    "decision",
    "validation",
    "label_delivery",
    "run_failed",
    "deadline",
    "promotion",
)
EVENTS = (PROMOTION,)  # each one is news: its own episode, notified and closed at once
# Conditions of the Airflow run itself, not findings of the monitoring steps: kept in the episodes (and sent),
# never as rows of the day's ``alerts`` (a run that failed on a missing batch wrote nothing for the day).
RUN_KINDS = (RUN_FAILED, DEADLINE)
LOCK = "churnguard-alerts"


@dataclass(frozen=True)
class Alert:
    """A condition found on day ``ds``."""

    ds: str
    kind: str
    severity: str
    message: str
    link: str | None = None

    def __post_init__(self):
        if self.severity not in RANK:
            raise ValueError(f"alert severity {self.severity!r}: expected one of {', '.join(RANK)}")


@dataclass(frozen=True)
class Notification:
    """One message to send: the episode's state as of ``ds``."""

    id: int
    episode_id: int
    ds: str
    kind: str
    severity: str
    change: str  # opened | escalated | cleared
    message: str
    link: str | None
    first_ds: str
    last_ds: str

    def subject(self) -> str:
        return f"[churnguard] {self.severity.upper()} {self.kind} {self.change} on {self.ds}"

    def text(self, link: str | None = None) -> str:
        """The message body: day, severity, what changed, the reason, since when, and the link."""
        link = link or self.link
        span = (
            f"since {self.first_ds} ({_days(self.first_ds, self.last_ds)} day(s))"
            if self.change != "cleared"
            else f"open {self.first_ds} .. {self.last_ds}"
        )
        lines = [f"{self.severity.upper()} {self.kind} {self.change} on {self.ds}, {span}", self.message]
        return "\n".join(lines + ([link] if link else []))

    def to_dict(self) -> dict:
        return asdict(self)


def _days(first: str, last: str) -> int:
    from datetime import date

    return (date.fromisoformat(last) - date.fromisoformat(first)).days + 1


def decision_severity(decision: str) -> str | None:
    """The daily decision as a severity: ``healthy`` None (clears), ``alert`` warning, ``retrain`` critical."""
    return {"healthy": None, "alert": WARNING, "retrain": CRITICAL}[decision]


def observe(
    store: MonitoringStore, ds: str, kind: str, alert: Alert | None, *, notify_cleared: bool = True
) -> Notification | None:
    """Record what day ``ds`` found for ``kind`` (``alert``, or None: cleared) and the notification it
    calls for, in one transaction under the alerts lock; returns that notification (pending), if any."""
    if alert is not None and (alert.ds, alert.kind) != (ds, kind):
        raise ValueError(f"alert of {alert.ds}/{alert.kind} observed as {ds}/{kind}")
    with exclusive(store.engine, LOCK), store.engine.begin() as conn:
        result = _observe(store, conn, ds, kind, alert, notify_cleared)
    if alert is not None and kind not in RUN_KINDS:
        crash_point("store.alerts.written")
    if result is not None:
        log.info("alert %s: %s", result.change, result.subject())
    return result


def _observe(store, conn, ds, kind, alert, notify_cleared) -> Notification | None:
    episodes, marks = schema.alert_episodes, schema.alert_watermarks
    mark = conn.execute(select(marks.c.last_ds).where(marks.c.kind == kind)).scalar_one_or_none()
    newest = mark is None or ds >= mark
    if mark is None or ds > mark:
        store.upsert(schema.alert_watermarks, [{"kind": kind, "last_ds": ds}], conn=conn)
    current = conn.execute(
        select(episodes).where(and_(episodes.c.kind == kind, episodes.c.state == "open")).order_by(episodes.c.id.desc())
    ).first()
    current = dict(current._mapping) if current else None
    if alert is None:
        if current is None or not newest or ds < current["last_ds"]:
            return None
        conn.execute(
            update(episodes)
            .where(episodes.c.id == current["id"])
            .values(state="cleared", cleared_ds=ds, updated_at=func.now())
        )
        notified = _notified(store, conn, current["id"])
        if not (notify_cleared and notified):
            return None
        return _notify(
            store, conn, current, ds, INFO, "cleared", f"{kind} cleared on {ds}; it was: {current['message']}", None
        )
    if not newest:  # a backfill: the day's row, in the episode that covers it; nothing else changes
        covering = conn.execute(
            select(episodes.c.id).where(
                and_(
                    episodes.c.kind == kind,
                    episodes.c.first_ds <= ds,
                    func.coalesce(episodes.c.cleared_ds, episodes.c.last_ds) >= ds,
                )
            )
        ).scalar()
        _row(store, conn, alert, covering)
        return None
    if kind in EVENTS or current is None:
        if current is not None or _latest_covers(store, conn, kind, ds):
            _row(store, conn, alert, current["id"] if current else None)
            return None  # a re-run of the day the episode was cleared or opened on
        episode_id = conn.execute(
            insert(episodes).values(
                kind=kind,
                first_ds=ds,
                last_ds=ds,
                severity=alert.severity,
                message=alert.message,
                state="cleared" if kind in EVENTS else "open",
                cleared_ds=ds if kind in EVENTS else None,
            )
        ).inserted_primary_key[0]
        _row(store, conn, alert, episode_id)
        episode = {"id": episode_id, "kind": kind, "first_ds": ds, "last_ds": ds}
        return _notify(store, conn, episode, ds, alert.severity, "opened", alert.message, alert.link)
    severity = max(current["severity"], alert.severity, key=RANK.__getitem__)
    notified = _notified(store, conn, current["id"])
    escalated = notified is not None and RANK[alert.severity] > RANK[notified]
    # an acknowledgement holds for the severity it was given at: an escalation takes it back
    taken_back = {"acknowledged_by": None, "acknowledged_at": None} if escalated else {}
    conn.execute(
        update(episodes)
        .where(episodes.c.id == current["id"])
        .values(
            last_ds=max(ds, current["last_ds"]),
            severity=severity,
            message=alert.message,
            updated_at=func.now(),
            **taken_back,
        )
    )
    _row(store, conn, alert, current["id"])
    if current["acknowledged_at"] is not None and not escalated:
        return None  # someone is on it: nothing more at this severity until it clears
    if notified is not None and not escalated:
        return None
    episode = {**current, "last_ds": max(ds, current["last_ds"])}
    return _notify(
        store, conn, episode, ds, alert.severity, "escalated" if notified else "opened", alert.message, alert.link
    )


def _latest_covers(store, conn, kind: str, ds: str) -> bool:
    """The newest episode of ``kind`` already spans ``ds`` (it was cleared on ``ds``, or opened and cleared)."""
    episodes = schema.alert_episodes
    latest = conn.execute(select(episodes).where(episodes.c.kind == kind).order_by(episodes.c.id.desc())).first()
    return latest is not None and latest.first_ds <= ds <= (latest.cleared_ds or latest.last_ds)


def _row(store, conn, alert: Alert, episode_id: int | None) -> None:
    if alert.kind in RUN_KINDS:
        return
    store.upsert(
        schema.alerts,
        [
            {
                "ds": alert.ds,
                "kind": alert.kind,
                "severity": alert.severity,
                "message": alert.message,
                "episode_id": episode_id,
                "link": alert.link,
            }
        ],
        conn=conn,
    )


def _notified(store, conn, episode_id: int) -> str | None:
    """The highest severity of the episode already notified (recorded), or None."""
    notes = schema.alert_notifications
    done = (
        conn.execute(
            select(notes.c.severity).where(and_(notes.c.episode_id == episode_id, notes.c.change != "cleared"))
        )
        .scalars()
        .all()
    )
    return max(done, key=RANK.__getitem__, default=None)


def _notify(
    store, conn, episode: dict, ds: str, severity: str, change: str, message: str, link: str | None
) -> Notification:
    """Record the notification, pending; the unique key (episode, change, severity) makes it at most once."""
    notes = schema.alert_notifications
    row = {
        "episode_id": episode["id"],
        "ds": ds,
        "kind": episode["kind"],
        "severity": severity,
        "change": change,
        "message": message,
        "link": link,
        "state": "pending",
    }
    note_id = conn.execute(insert(notes).values(**row)).inserted_primary_key[0]
    return Notification(
        id=note_id,
        episode_id=episode["id"],
        ds=ds,
        kind=row["kind"],
        severity=severity,
        change=change,
        message=message,
        link=link,
        first_ds=episode["first_ds"],
        last_ds=episode["last_ds"],
    )


def acknowledge(store: MonitoringStore, episode_id: int, by: str) -> dict | None:
    """Record that ``by`` acknowledged the episode ``episode_id`` now, unless it was acknowledged before (the
    first acknowledgement stays); under the alerts lock, so it is ordered with :func:`observe`. Returns the
    episode as stored, or None when there is no such episode."""
    episodes = schema.alert_episodes
    with exclusive(store.engine, LOCK), store.engine.begin() as conn:
        conn.execute(
            update(episodes)
            .where(and_(episodes.c.id == episode_id, episodes.c.acknowledged_at.is_(None)))
            .values(acknowledged_by=by, acknowledged_at=datetime.now(UTC))
        )
        row = conn.execute(select(episodes).where(episodes.c.id == episode_id)).first()
    if row is None:
        return None
    episode = dict(row._mapping)
    log.info(
        "alert episode %s (%s since %s) acknowledged by %s",
        episode_id,
        episode["kind"],
        episode["first_ds"],
        episode["acknowledged_by"],
    )
    return episode


def pending(store: MonitoringStore) -> list[Notification]:
    """Notifications recorded and not yet claimed by a deliverer, oldest first."""
    notes, episodes = schema.alert_notifications, schema.alert_episodes
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(notes, episodes.c.first_ds, episodes.c.last_ds)
            .join(episodes, episodes.c.id == notes.c.episode_id)
            .where(notes.c.state == "pending")
            .order_by(notes.c.id)
        ).all()
    return [
        Notification(
            id=r.id,
            episode_id=r.episode_id,
            ds=r.ds,
            kind=r.kind,
            severity=r.severity,
            change=r.change,
            message=r.message,
            link=r.link,
            first_ds=r.first_ds,
            last_ds=r.last_ds if r.change == "cleared" else r.ds,
        )
        for r in rows
    ]  # as of its day


def claim(store: MonitoringStore, note: Notification) -> bool:
    """Take ``note`` for sending: True for exactly one caller (pending -> claimed in one statement)."""
    notes = schema.alert_notifications
    with store.engine.begin() as conn:
        claimed = conn.execute(
            update(notes).where(and_(notes.c.id == note.id, notes.c.state == "pending")).values(state="claimed")
        ).rowcount
    return claimed == 1


def finish(store: MonitoringStore, note: Notification, channels: dict[str, str]) -> str:
    """Record how a claimed notification went: ``sent`` when any channel took it, ``skipped`` without
    channels, else ``failed``."""
    state = "skipped" if not channels else "sent" if "sent" in channels.values() else "failed"
    notes = schema.alert_notifications
    with store.engine.begin() as conn:
        conn.execute(
            update(notes).where(notes.c.id == note.id).values(state=state, channels=channels, sent_at=datetime.now(UTC))
        )
    return state


def notifications(store: MonitoringStore, **where) -> list[dict]:
    """The recorded notifications (``where``: column = value), oldest first."""
    return store.rows(schema.alert_notifications, where=where or None, order_by="id")


def episodes(store: MonitoringStore, **where) -> list[dict]:
    return store.rows(schema.alert_episodes, where=where or None, order_by="id")
