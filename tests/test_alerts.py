"""Alerts: the episodes and notifications of churnguard.alerts over sequences of days on a real SQLite store,
and their delivery through Airflow's notifiers to real local endpoints (a webhook on loopback, aiosmtpd)."""

from __future__ import annotations

import pytest

from churnguard import alerts
from churnguard.alerts import CRITICAL, DECISION, INFO, WARNING, Alert
from churnguard.store import schema


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
    assert (episode["first_ds"], episode["last_ds"], episode["state"], episode["cleared_ds"], episode["severity"]) == (
        day(1),
        day(5),
        "cleared",
        day(6),
        CRITICAL,
    )
    assert changes(store) == [(day(1), "opened", WARNING), (day(3), "escalated", CRITICAL), (day(6), "cleared", INFO)]
    rows = store.rows(schema.alerts, order_by="ds")
    assert [(r["ds"], r["severity"], r["episode_id"]) for r in rows] == [
        (day(n), s, episode["id"]) for n, s in ((1, WARNING), (2, WARNING), (3, CRITICAL), (4, WARNING), (5, CRITICAL))
    ]

    reopened = see(store, 8, WARNING)  # after a clear: a new episode, notified again
    assert reopened.change == "opened" and reopened.episode_id != episode["id"]


def test_a_rerun_of_any_day_changes_and_sends_nothing_new(store):
    for n, severity in ((1, WARNING), (2, CRITICAL), (3, None)):
        see(store, n, severity)
    before = (alerts.episodes(store), changes(store), store.rows(schema.alerts))
    for n, severity in ((1, WARNING), (2, CRITICAL), (3, None), (3, None), (2, CRITICAL)):
        assert see(store, n, severity) is None, n
    after = (alerts.episodes(store), changes(store), store.rows(schema.alerts))
    assert [e for e in after[0]] == before[0] and after[1] == before[1]
    assert [(r["ds"], r["severity"], r["episode_id"]) for r in after[2]] == [
        (r["ds"], r["severity"], r["episode_id"]) for r in before[2]
    ]


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
    rows = {r["ds"]: r for r in store.rows(schema.alerts)}
    assert rows[day(5)]["episode_id"] is None and rows[day(5)]["severity"] == CRITICAL  # outside any episode
    assert rows[day(11)]["episode_id"] == episode["id"] and rows[day(11)]["severity"] == CRITICAL


def test_the_runs_own_conditions_are_episodes_without_rows_of_the_day(store):
    assert see(store, 1, CRITICAL, kind=alerts.RUN_FAILED).change == "opened"
    assert see(store, 2, CRITICAL, kind=alerts.DEADLINE).change == "opened"
    assert see(store, 2, CRITICAL, kind=alerts.RUN_FAILED) is None
    assert store.rows(schema.alerts) == [] and len(alerts.episodes(store)) == 2


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


# --- acknowledging ------------------------------------------------------------------------------------------
def test_acknowledging_records_who_and_when_once_and_the_first_stays(store):
    opened = see(store, 1, WARNING)
    first = alerts.acknowledge(store, opened.episode_id, "ana")
    assert first["acknowledged_by"] == "ana" and first["acknowledged_at"] is not None
    again = alerts.acknowledge(store, opened.episode_id, "bo")
    assert (again["acknowledged_by"], again["acknowledged_at"]) == ("ana", first["acknowledged_at"])
    (stored,) = alerts.episodes(store)
    assert (stored["acknowledged_by"], stored["state"]) == ("ana", "open")
    assert alerts.acknowledge(store, opened.episode_id + 1, "ana") is None  # no such episode


def test_an_acknowledged_open_episode_notifies_nothing_until_it_clears_then_a_new_one_is_notified(store):
    opened = see(store, 1, WARNING)
    alerts.acknowledge(store, opened.episode_id, "ana")
    assert see(store, 2, WARNING) is None  # someone is on it
    assert see(store, 3, WARNING) is None
    (episode,) = alerts.episodes(store)
    assert (episode["last_ds"], episode["severity"], episode["acknowledged_by"]) == (day(3), WARNING, "ana")
    assert see(store, 4, None).change == "cleared"  # the one who took it on hears it is over
    reopened = see(store, 5, WARNING)
    assert reopened.change == "opened" and reopened.episode_id != opened.episode_id
    assert alerts.episodes(store)[-1]["acknowledged_at"] is None
    assert changes(store) == [(day(1), "opened", WARNING), (day(4), "cleared", INFO), (day(5), "opened", WARNING)]


def test_an_escalation_of_an_acknowledged_episode_is_notified_and_takes_the_acknowledgement_back(store):
    opened = see(store, 1, WARNING)
    alerts.acknowledge(store, opened.episode_id, "ana")
    assert see(store, 2, CRITICAL).change == "escalated"
    (episode,) = alerts.episodes(store)
    assert (episode["severity"], episode["acknowledged_by"], episode["acknowledged_at"]) == (CRITICAL, None, None)
    assert see(store, 3, CRITICAL) is None
    alerts.acknowledge(store, opened.episode_id, "bo")  # taken on again, at critical
    assert see(store, 4, CRITICAL) is None and alerts.episodes(store)[0]["acknowledged_by"] == "bo"


def test_the_decision_maps_to_severities():
    assert [alerts.decision_severity(d) for d in ("healthy", "alert", "retrain")] == [None, WARNING, CRITICAL]
    with pytest.raises(ValueError, match="severity"):
        Alert(day(1), DECISION, "retrain", "m")


# --- delivery to real local endpoints ----------------------------------------------------------------------
class Webhook:
    """A Slack incoming webhook on loopback (stdlib HTTP server in a thread): every POST lands in ``posts``
    (path, JSON body) and is answered with ``status``."""

    def __init__(self, status: int = 200):
        import queue
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status, self.posts = status, queue.Queue()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                import json

                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.put((self.path, json.loads(body)))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"internal error")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        """Every message received so far (none is waited for: the sends are synchronous)."""
        got = []
        while not self.posts.empty():
            path, body = self.posts.get_nowait()
            assert path == "/services/T0/B0/secret"
            got.append(body["text"])
        return got

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """aiosmtpd on a free loopback port; ``messages()`` are the mails it received, parsed."""

    def __init__(self):
        import queue

        from aiosmtpd.controller import Controller
        from airflow_stack import free_port

        self.received = queue.Queue()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.received.put(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def messages(self) -> list:
        import email
        from email import policy

        got = []
        while not self.received.empty():
            envelope = self.received.get_nowait()
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            html = message.get_body(("html",)).get_content()
            got.append(
                {"to": envelope.rcpt_tos, "from": envelope.mail_from, "subject": message["Subject"], "html": html}
            )
        return got

    def close(self):
        self.controller.stop()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mail():
    sink = MailSink()
    yield sink
    sink.close()


def slack_connection(url: str) -> str:
    import json

    return json.dumps({"conn_type": "slackwebhook", "password": url})


def smtp_connection(port: int) -> str:
    import json

    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "churnguard@example.test",
                "retry_limit": 0,
                "timeout": 5,
            },
        }
    )


@pytest.fixture
def channels(webhook, mail, monkeypatch):
    """Both channels configured, their connections as AIRFLOW_CONN_… JSON pointing at the local endpoints."""
    from churnguard.config import AlertsConfig

    monkeypatch.setenv("AIRFLOW_CONN_CHURNGUARD_SLACK", slack_connection(webhook.url))
    monkeypatch.setenv("AIRFLOW_CONN_CHURNGUARD_SMTP", smtp_connection(mail.port))
    return AlertsConfig(
        channels=["slack", "smtp"], email_to=["oncall@example.test"], ui_url="http://airflow.example.test:8080/"
    )


def test_pending_notifications_arrive_on_slack_and_by_mail_once(store, channels, webhook, mail):
    from churnguard_airflow import notify

    see(store, 6, WARNING, message="decision=alert: moderate drift (share drifted 0.31, top tenure)")
    see(store, 7, CRITICAL, message="decision=retrain: critical drift (share drifted 0.52, top tenure)")
    see(store, 8, None)

    done = notify.deliver_pending(store, channels)

    assert [(d["ds"], d["change"], d["state"], d["channels"]) for d in done] == [
        (day(6), "opened", "sent", {"slack": "sent", "smtp": "sent"}),
        (day(7), "escalated", "sent", {"slack": "sent", "smtp": "sent"}),
        (day(8), "cleared", "sent", {"slack": "sent", "smtp": "sent"}),
    ]
    link = "http://airflow.example.test:8080/churnguard/health/run/"
    texts = webhook.texts()
    assert len(texts) == 3
    assert texts[0].splitlines() == [
        "WARNING decision opened on 2026-09-06, since 2026-09-06 (1 day(s))",
        "decision=alert: moderate drift (share drifted 0.31, top tenure)",
        f"{link}2026-09-06",
    ]
    assert texts[1].startswith(
        "CRITICAL decision escalated on 2026-09-07, since 2026-09-06 (2 day(s))\ndecision=retrain: critical drift"
    )
    assert texts[2].startswith("INFO decision cleared on 2026-09-08, open 2026-09-06 .. 2026-09-07")
    mails = mail.messages()
    assert [m["subject"] for m in mails] == [
        "[churnguard] WARNING decision opened on 2026-09-06",
        "[churnguard] CRITICAL decision escalated on 2026-09-07",
        "[churnguard] INFO decision cleared on 2026-09-08",
    ]
    assert all(m["to"] == ["oncall@example.test"] and m["from"] == "churnguard@example.test" for m in mails)
    assert "critical drift (share drifted 0.52, top tenure)" in mails[1]["html"]
    assert f'href="{link}2026-09-07"' in mails[1]["html"]

    assert notify.deliver_pending(store, channels) == []  # delivered: never again
    see(store, 8, None)  # a re-run of the last day
    assert notify.deliver_pending(store, channels) == [] and webhook.texts() == [] and mail.messages() == []


def test_a_failing_notifier_never_raises_and_is_recorded(store, monkeypatch, caplog):
    """The webhook answers 500, nobody listens on the SMTP port: delivery returns, both errors recorded."""
    from airflow_stack import free_port

    from churnguard.config import AlertsConfig
    from churnguard_airflow import notify

    broken = Webhook(status=500)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_CHURNGUARD_SLACK", slack_connection(broken.url))
        monkeypatch.setenv("AIRFLOW_CONN_CHURNGUARD_SMTP", smtp_connection(free_port()))
        cfg = AlertsConfig(channels=["slack", "smtp"], email_to=["oncall@example.test"])
        see(store, 1, CRITICAL, kind=alerts.VALIDATION)

        (done,) = notify.deliver_pending(store, cfg)

        assert len(broken.texts()) == 1  # the webhook was called, and failed
    finally:
        broken.close()
    assert done["state"] == "failed"
    assert "500" in done["channels"]["slack"]
    assert "Connection refused" in done["channels"]["smtp"] or "connect" in done["channels"]["smtp"].lower()
    (row,) = alerts.notifications(store)
    assert row["state"] == "failed" and row["channels"] == done["channels"]
    assert "not sent to slack" in caplog.text and "not sent to smtp" in caplog.text
    assert notify.deliver_pending(store, cfg) == []  # at most once: a failed send is not retried


def test_an_undefined_connection_is_a_logged_failure_naming_the_variable(store, monkeypatch, caplog):
    from churnguard.config import AlertsConfig
    from churnguard_airflow import notify

    monkeypatch.delenv("AIRFLOW_CONN_CHURNGUARD_SLACK", raising=False)
    see(store, 1, WARNING)
    (done,) = notify.deliver_pending(store, AlertsConfig(channels=["slack"]))
    assert done["state"] == "failed" and "churnguard_slack" in done["channels"]["slack"]
    assert "AIRFLOW_CONN_CHURNGUARD_SLACK" in caplog.text


def test_without_channels_notifications_are_recorded_as_skipped(store):
    from churnguard.config import AlertsConfig
    from churnguard_airflow import notify

    see(store, 1, WARNING)
    (done,) = notify.deliver_pending(store, AlertsConfig())
    assert done["state"] == "skipped" and alerts.notifications(store)[0]["state"] == "skipped"


def test_the_connection_variables_are_those_of_the_default_conn_ids():
    from churnguard.config import AlertsConfig
    from churnguard_airflow.notify import CONNECTION_VARIABLES

    cfg = AlertsConfig()
    assert CONNECTION_VARIABLES == {
        "slack": f"AIRFLOW_CONN_{cfg.slack_conn_id.upper()}",
        "smtp": f"AIRFLOW_CONN_{cfg.smtp_conn_id.upper()}",
    }


# --- the DAG's callbacks and deadline --------------------------------------------------------------------
TINY_DAG = """
import pendulum
from airflow.sdk import dag, task

from churnguard_airflow.notify import on_task_failure


@dag(schedule=None, start_date=pendulum.datetime(2026, 9, 1, tz="UTC"),
     default_args={"on_failure_callback": on_task_failure, "retries": 0})
def alerts_tiny():
    @task
    def explode():
        raise RuntimeError("the {{ store }} is down")

    explode()


alerts_tiny()
"""


def both_channels(config_dir) -> None:
    """The active monitoring.yaml (a copy) with both channels on."""
    import yaml

    path = config_dir / "monitoring.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["alerts"].update(
        channels=["slack", "smtp"], email_to=["oncall@example.test"], ui_url="http://airflow.example.test:8080"
    )
    path.write_text(yaml.safe_dump(cfg))


@pytest.mark.integration
def test_a_failed_task_of_a_real_dag_run_is_one_critical_alert_by_mail_and_slack(
    airflow_env, churnguard_home, config_dir, tmp_path, webhook, mail
):
    """`airflow dags test` of a DAG whose task fails: its on_failure_callback records the alert in the
    churnguard store, and the mail and the Slack message arrive."""
    from churnguard.store import open_store
    from tests.conftest import dag_test, with_home

    both_channels(config_dir)
    dags = tmp_path / "tiny-dags"
    dags.mkdir()
    (dags / "alerts_tiny.py").write_text(TINY_DAG)
    env = with_home(
        airflow_env,
        churnguard_home,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        CHURNGUARD_CONFIG_DIR=str(config_dir),
        AIRFLOW_CONN_CHURNGUARD_SLACK=slack_connection(webhook.url),
        AIRFLOW_CONN_CHURNGUARD_SMTP=smtp_connection(mail.port),
    )

    state, log = dag_test(env, "alerts_tiny", "2026-09-07")

    assert state == "failed", log[-3000:]
    (mailed,) = mail.messages()
    assert mailed["subject"] == "[churnguard] CRITICAL run_failed opened on 2026-09-07"
    assert "task alerts_tiny.explode failed for 2026-09-07: RuntimeError: the {{ store }} is down" in mailed["html"]
    (text,) = webhook.texts()
    assert text.startswith("CRITICAL run_failed opened on 2026-09-07")
    assert "RuntimeError: the {{ store }} is down" in text  # literal: never rendered as a template
    assert "/dags/alerts_tiny/runs/" in text.splitlines()[-1] and "explode" in text.splitlines()[-1], text  # log
    (episode,) = alerts.episodes(open_store())
    assert (episode["first_ds"], episode["kind"], episode["severity"], episode["state"]) == (
        "2026-09-07",
        "run_failed",
        "critical",
        "open",
    )
    assert [n["state"] for n in alerts.notifications(open_store())] == ["sent"]
    assert open_store().rows(schema.alerts) == []  # the day's findings: a failed run found nothing


def daily_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags" / "churn_daily_monitoring.py")).dags["churn_daily_monitoring"]


def test_the_daily_dag_has_the_deadline_and_the_callbacks():
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineReference

    from churnguard.config import load_monitoring_config
    from churnguard_airflow.connections import use_connections
    from churnguard_airflow.notify import on_day_published, on_task_failure

    dag = daily_dag()
    (deadline,) = dag.deadline
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT  # a scheduled run: when its batch was due
    hours = load_monitoring_config().alerts.deadline_hours
    assert deadline.interval == timedelta(hours=hours)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "churnguard_airflow.notify.deadline_missed"
    assert [t.task_id for t in dag.tasks if t.on_failure_callback != [on_task_failure]] == []
    assert dag.get_task("publish").on_success_callback == [on_day_published]
    assert all(t._pre_execute_hook is use_connections for t in dag.tasks)


def test_no_deadline_when_unset_or_under_airflow_dags_test(monkeypatch):
    """``dag.test()`` of Airflow 3.3.2 crashes at the end of a successful run of a DAG with a deadline."""
    from churnguard_airflow.notify import day_deadline

    assert day_deadline(None) is None
    assert day_deadline(2).interval.total_seconds() == 2 * 3600
    monkeypatch.setattr("sys.argv", ["airflow", "dags", "test", "churn_daily_monitoring", "2026-09-07"])
    assert day_deadline(2) is None


def run_context(**run) -> dict:
    """The context a deadline callback gets (built by the scheduler: the run as the REST API returns it)."""
    from datetime import UTC, datetime

    dag_run = {
        "dag_run_id": "scheduled__2026-09-07T00:00:00+00:00",
        "dag_id": "churn_daily_monitoring",
        "logical_date": "2026-09-07T00:00:00Z",
        "queued_at": "2026-09-08T00:00:05Z",
        "run_type": "scheduled",
        "state": "running",
        "conf": {},
        **run,
    }
    return {"dag_run": dag_run, "deadline": {"id": "d1", "deadline_time": datetime(2026, 9, 8, 6, tzinfo=UTC)}}


def test_the_deadline_callback_alerts_a_late_run_once(store, channels, webhook, mail, monkeypatch):
    import asyncio

    from churnguard_airflow import notify

    monkeypatch.setattr(notify, "_config", lambda cfg=None: channels)  # the triggerer's config: both channels

    asyncio.run(notify.deadline_missed(run_context()))

    (text,) = webhook.texts()
    assert text.startswith("CRITICAL deadline opened on 2026-09-07")
    assert "of 2026-09-07 has not finished by 2026-09-08 06:00:00+00:00" in text
    assert text.endswith("/churnguard/health/run/2026-09-07")
    (mailed,) = mail.messages()
    assert mailed["subject"] == "[churnguard] CRITICAL deadline opened on 2026-09-07"

    asyncio.run(notify.deadline_missed(run_context()))  # the callback again (a retried trigger): nothing new
    assert webhook.texts() == [] and mail.messages() == []

    notify.end_of_day("2026-09-07", store, channels)  # the run finished after all: cleared
    (text,) = webhook.texts()
    assert text.startswith("INFO deadline cleared on 2026-09-07")


@pytest.mark.parametrize(
    "run",
    [{"state": "failed"}, {"state": "success"}, {"run_type": "backfill"}],
    ids=["failed", "succeeded", "backfill"],
)
def test_the_deadline_raises_nothing_for_runs_not_late_in_running(run):
    from churnguard_airflow.notify import deadline_alert

    assert deadline_alert(run_context(**run)) is None
    assert deadline_alert(run_context(conf={"batch_date": "2026-09-03"})).ds == "2026-09-03"


DEADLINE_DAG = """
import pendulum
from airflow.sdk import dag, task

from churnguard_airflow.notify import day_deadline


@dag(schedule=None, start_date=pendulum.datetime(2026, 9, 1, tz="UTC"), deadline=day_deadline(0.004))
def alerts_late():
    @task
    def work():
        pass

    work()


alerts_late()
"""


@pytest.mark.integration
def test_a_run_unfinished_at_its_deadline_is_alerted_by_the_real_scheduler_and_triggerer(
    airflow_env, churnguard_home, config_dir, tmp_path, webhook, mail
):
    """The daily DAG's deadline (here 0.004 h, 14.4 s, after the run was queued) watched by a real `airflow
    scheduler` and its callback run by a real `airflow triggerer`: a run that has not finished (its DAG paused,
    so it never starts) is one critical alert in the store, on Slack and by mail, once its deadline passes."""
    import subprocess
    import time
    from datetime import UTC, datetime, timedelta

    from churnguard.store import open_store
    from tests.conftest import BIN, run_airflow, stop_group, with_home

    both_channels(config_dir)
    dags = tmp_path / "late-dags"
    dags.mkdir()
    (dags / "alerts_late.py").write_text(DEADLINE_DAG)
    env = with_home(
        airflow_env,
        churnguard_home,
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        CHURNGUARD_CONFIG_DIR=str(config_dir),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW_CONN_CHURNGUARD_SLACK=slack_connection(webhook.url),
        AIRFLOW_CONN_CHURNGUARD_SMTP=smtp_connection(mail.port),
    )
    for args in (["db", "migrate"], ["dags", "reserialize"], ["dags", "pause", "alerts_late"]):
        done = run_airflow(env, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    triggered = datetime.now(UTC)
    done = run_airflow(
        env, "dags", "trigger", "alerts_late", "--logical-date", "2026-09-07T00:00:00+00:00", "--run-id", "manual__late"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logs = tmp_path / "logs"
    logs.mkdir()
    services = [
        subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env=env,
            start_new_session=True,
            stdout=(logs / f"{args[0]}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for args in (["scheduler"], ["triggerer", "--skip-serve-logs"])
    ]
    try:
        until = time.monotonic() + 180
        while not alerts.episodes(open_store()) and time.monotonic() < until:
            time.sleep(1)
        (episode,) = alerts.episodes(open_store())
        until = time.monotonic() + 30  # the callback delivers right after it records
        while (webhook.posts.empty() or mail.received.empty()) and time.monotonic() < until:
            time.sleep(0.5)
    finally:
        for proc in services:
            stop_group(proc)
    assert datetime.now(UTC) >= triggered + timedelta(hours=0.004)
    ds = "2026-09-07"
    assert (episode["first_ds"], episode["kind"], episode["severity"], episode["state"]) == (
        ds,
        "deadline",
        "critical",
        "open",
    ), episode
    (text,) = webhook.texts()
    assert text.startswith(f"CRITICAL deadline opened on {ds}")
    assert f"the run manual__late of {ds} has not finished by" in text and "(queued 2026-12-" in text
    (mailed,) = mail.messages()
    assert mailed["subject"] == f"[churnguard] CRITICAL deadline opened on {ds}"
