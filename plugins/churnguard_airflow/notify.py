"""Alert delivery through Airflow's notifiers, and the callbacks that raise alerts of the runs themselves.

:mod:`churnguard.alerts` decides WHAT to send (and records it, pending, before anything is sent); this module
sends it through ``SlackWebhookNotifier`` (providers slack) and ``SmtpNotifier`` (providers smtp), the
channels ``monitoring.yaml``'s ``alerts.channels`` lists, over the Airflow connections ``alerts.slack_conn_id``
and ``alerts.smtp_conn_id`` (``AIRFLOW_CONN_CHURNGUARD_SLACK`` / ``AIRFLOW_CONN_CHURNGUARD_SMTP`` as JSON, or
any secrets backend). Every notifier exception is caught and logged, and recorded on the notification: a
notifier failure never fails the monitoring run.

- :func:`deliver_pending`: claim and send every pending notification (at the end of the day, when
  ``publish`` succeeded: :func:`on_day_published`, and in the callbacks below);
- :func:`on_task_failure`: a task's ``on_failure_callback``: a failed run is a critical ``run_failed`` alert
  (unless the day already recorded a critical alert explaining it, e.g. a quarantined batch);
- :func:`deadline_missed`: the ``DeadlineAlert`` callback (runs in the triggerer): the day's run has not
  finished ``alerts.deadline_hours`` after it was queued (for a scheduled run: after its batch was due).

Messages are passed to the notifiers as literal text (``notify`` is called, not ``__call__``, which would
render them as Jinja templates: a ``{{`` in an exception message must not break the alert).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from churnguard import alerts
from churnguard.store import schema

log = logging.getLogger(__name__)

# The connections of the default conn ids, as Airflow reads them from the environment (see .env.example).
CONNECTION_VARIABLES = {"slack": "AIRFLOW_CONN_CHURNGUARD_SLACK", "smtp": "AIRFLOW_CONN_CHURNGUARD_SMTP"}


def _config(cfg=None):
    from churnguard.config import load_monitoring_config

    return cfg or load_monitoring_config().alerts


def _store(store=None):
    from churnguard.store import open_store

    return store or open_store()


def ui_url(cfg) -> str:
    """The Airflow UI as people reach it: ``alerts.ui_url``, else Airflow's ``[api] base_url``."""
    if cfg.ui_url:
        return cfg.ui_url.rstrip("/")
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")


def day_link(ds: str, cfg) -> str:
    """The day's Model Health page (its run, decision, alerts)."""
    return f"{ui_url(cfg)}/churnguard/health/run/{ds}"


def notifiers(note: alerts.Notification, cfg) -> dict[str, Any]:
    """The configured channels' notifiers for ``note``, built with its literal subject and text."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    link = note.link or day_link(note.ds, cfg)
    text = note.text(link)
    made = {}
    for channel in cfg.channels:
        if channel == "slack":
            made[channel] = SlackWebhookNotifier(slack_webhook_conn_id=cfg.slack_conn_id, text=text, timeout=10)
        elif channel == "smtp":
            body = "<br>\n".join(html.escape(line) for line in text.splitlines()[:-1])
            made[channel] = SmtpNotifier(
                to=list(cfg.email_to),
                from_email=cfg.email_from,
                subject=note.subject(),
                html_content=f'<p>{body}</p>\n<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>',
                smtp_conn_id=cfg.smtp_conn_id,
            )
    return made


def send(note: alerts.Notification, cfg, context: Mapping | None = None) -> dict[str, str]:
    """Send ``note`` on every configured channel; ``{channel: "sent" or the error}``. Never raises."""
    results = {}
    try:
        made = notifiers(note, cfg)
    except Exception as exc:  # a notifier that cannot even be built (provider missing, bad config)
        log.warning("alert %s not sent: %s: %s", note.subject(), type(exc).__name__, exc)
        return dict.fromkeys(cfg.channels, f"{type(exc).__name__}: {exc}"[:500])
    for channel, notifier in made.items():
        try:
            notifier.notify(dict(context or {}))
        except Exception as exc:
            missing = "isn't defined" in str(exc) or "not found" in str(exc)
            hint = (
                f" (is the connection {getattr(cfg, f'{channel}_conn_id')} defined? e.g. "
                f"{CONNECTION_VARIABLES.get(channel, 'AIRFLOW_CONN_...')})"
                if missing
                else ""
            )
            log.warning("alert %s not sent to %s: %s: %s%s", note.subject(), channel, type(exc).__name__, exc, hint)
            results[channel] = f"{type(exc).__name__}: {exc}"[:500]
        else:
            log.info("alert %s sent to %s", note.subject(), channel)
            results[channel] = "sent"
    return results


def deliver_pending(store=None, cfg=None, context: Mapping | None = None) -> list[dict]:
    """Claim and send every pending notification, oldest first; each is claimed (atomically) before it is
    sent, so two deliverers never send one twice, and one whose send was cut short stays claimed (at most
    once). Without channels they are recorded as ``skipped``. Returns what happened to each."""
    store, cfg = _store(store), _config(cfg)
    done = []
    for note in alerts.pending(store):
        if not alerts.claim(store, note):
            continue
        results = send(note, cfg, context) if cfg.channels else {}
        state = alerts.finish(store, note, results)
        done.append({**note.to_dict(), "state": state, "channels": results})
    return done


def end_of_day(ds: str, store=None, cfg=None, context: Mapping | None = None) -> list[dict]:
    """The day's run got to its end: its failure and deadline conditions are clear; then deliver."""
    store, cfg = _store(store), _config(cfg)
    for kind in (alerts.RUN_FAILED, alerts.DEADLINE):
        alerts.observe(store, ds, kind, None, notify_cleared=cfg.notify_cleared)
    return deliver_pending(store, cfg, context)


# --- callbacks ---------------------------------------------------------------------------------------------
def on_day_published(context: Mapping) -> None:
    """``on_success_callback`` of the daily DAG's ``publish`` task: the day got to its end
    (:func:`end_of_day`). Anything going wrong here is logged, never raised: the day is published."""
    try:
        from churnguard_airflow.day import batch_date

        end_of_day(batch_date(context), context=context)
    except Exception:
        log.exception("alerts of the day not delivered")


def failure_alert(ds: str, context: Mapping, store) -> alerts.Alert | None:
    """The critical ``run_failed`` alert of a failed task, or None when the day already recorded a critical
    alert of another kind that explains it (a quarantined batch fails ``validate`` by design)."""
    explained = [
        a
        for a in store.rows(schema.alerts, where={"ds": ds})
        if a["severity"] == alerts.CRITICAL and a["kind"] != alerts.RUN_FAILED
    ]
    if explained:
        return None
    ti = context.get("ti") or context.get("task_instance")
    task = getattr(ti, "task_id", None) or "?"
    dag = getattr(ti, "dag_id", None) or (context.get("dag").dag_id if context.get("dag") else "?")
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}".splitlines()[0] if error else "no exception recorded"
    log_url = getattr(ti, "log_url", None)
    return alerts.Alert(
        ds, alerts.RUN_FAILED, alerts.CRITICAL, f"task {dag}.{task} failed for {ds}: {reason}", link=log_url or None
    )


def on_task_failure(context: Mapping) -> None:
    """``on_failure_callback`` of the daily DAG's tasks: release the run's lease of the date, record the failure
    (de-duplicated per day, as every alert) and deliver what is pending. Anything going wrong here is logged,
    never raised."""
    try:
        from churnguard.store import lease
        from churnguard_airflow.day import batch_date, run_holder

        ds = batch_date(context)
        store, cfg = _store(), _config()
        lease.release(store, ds, run_holder(context))  # the run stops here: another run may take the date
        alert = failure_alert(ds, context, store)
        if alert is not None:
            alerts.observe(store, ds, alerts.RUN_FAILED, alert, notify_cleared=cfg.notify_cleared)
        deliver_pending(store, cfg, context)
    except Exception:
        log.exception("alerts of the failed task not recorded or delivered")


def deadline_alert(context: Mapping) -> alerts.Alert | None:
    """The critical ``deadline`` alert of a run still unfinished at its deadline, from the deadline
    callback's context (``dag_run`` as the API returns it, ``deadline``); None for a run that ended (a
    failed run is a ``run_failed`` alert already) or a backfill (a catch-up of old days: its runs queue
    behind each other, late by construction, not late in running)."""
    from churnguard.daily import resolve_ds

    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    if run.get("state") not in (None, "queued", "running") or run.get("run_type") == "backfill":
        return None
    ds = resolve_ds((run.get("conf") or {}).get("batch_date"), run.get("logical_date"))
    return alerts.Alert(
        ds,
        alerts.DEADLINE,
        alerts.CRITICAL,
        f"the run {run.get('dag_run_id') or run.get('run_id')} of {ds} has not finished by "
        f"{deadline} (queued {run.get('queued_at')})",
    )


def _deadline_missed(context: Mapping) -> None:
    try:
        cfg, store = _config(), _store()
        alert = deadline_alert(context)
        if alert is None:
            log.info("deadline passed for a run that ended or started late: no alert")
            return
        alerts.observe(store, alert.ds, alerts.DEADLINE, alert, notify_cleared=cfg.notify_cleared)
        deliver_pending(store, cfg)
    except Exception:
        log.exception("deadline alert not recorded or delivered")


def day_deadline(hours: float | None):
    """The daily DAG's ``DeadlineAlert``: a run unfinished ``hours`` after it was queued is late, and
    :func:`deadline_missed` runs in the triggerer. The scheduler queues day D's run when D ends, when its batch
    is due, so that is ``hours`` after the batch was due; a run queued later (a catch-up after downtime, a
    trigger, a backfill) gets its ``hours`` from then, and never shows a deadline missed before it was queued.

    None when ``hours`` is None (``alerts.deadline_hours: null``), and while ``airflow dags test`` parses the
    DAG: in Airflow 3.3.2 ``dag.test()`` runs an in-memory copy whose deadlines are still definitions where
    ``DagRun.update_state`` expects their database ids, so every successful test run would end in a crash
    (``'dict' object has no attribute 'hex'``). A test run has no scheduler to watch a deadline anyway.
    """
    import sys
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    if hours is None or sys.argv[1:3] == ["dags", "test"]:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=hours),
        callback=AsyncCallback(deadline_missed),
        name="churnguard_day_late",
    )


async def deadline_missed(context: Mapping, **kwargs) -> None:
    """The daily DAG's ``DeadlineAlert`` callback (an ``AsyncCallback``, run by the triggerer): the store and
    the notifiers are synchronous, so they run in a thread."""
    import asyncio

    await asyncio.to_thread(_deadline_missed, context)
