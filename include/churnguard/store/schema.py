"""Tables of the monitoring store (SQLAlchemy Core). Changes go through a migration in ``migrations/``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

metadata = MetaData()

# One row per processed day: what the daily run saw and decided (re-running a day replaces it).
daily_runs = Table(
    "daily_runs",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("dataset", String(64), nullable=False),
    Column("rows", Integer),
    Column("data_version", String(32)),
    Column("validation_status", String(16)),
    Column("drift_severity", String(16)),
    Column("drift_share", Float),
    Column("weighted_drift", Float),
    Column("prediction_psi", Float),
    Column("champion_version", Integer),
    Column("challenger_version", Integer),
    Column("failure_risk", Float),
    Column("decision", String(16)),
    Column("reasons", JSON),
    Column("promoted", Boolean, default=False),
    Column("summary_uri", Text),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), onupdate=func.now()),
)

feature_drift = Table(
    "feature_drift",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("kind", String(16)),
    Column("psi", Float),
    Column("psi_threshold", Float),
    Column("statistic", Float),
    Column("p_value", Float),
    Column("js_distance", Float),
    Column("wasserstein", Float),
    Column("missing_delta", Float),
    Column("drifted", Boolean),
    Column("consecutive_days", Integer),
)

# Metrics of a model version on the customers of one landing day, once their labels arrived.
performance = Table(
    "performance",
    metadata,
    Column("observed_ds", String(10), primary_key=True),
    Column("role", String(16), primary_key=True),  # champion | challenger
    Column("model_version", Integer, nullable=False),
    Column("measured_ds", String(10), nullable=False),
    Column("labelled_rows", Integer),
    Column("roc_auc", Float),
    Column("roc_auc_lower", Float),
    Column("f1", Float),
    Column("precision", Float),
    Column("recall", Float),
    Column("brier", Float),
    Column("churn_rate", Float),
)

failure_risk = Table(
    "failure_risk",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("available", Boolean, nullable=False),
    Column("risk", Float),
    Column("drivers", JSON),
    Column("signals", JSON),
    Column("model_version", Integer),
    Column("reason", Text),
)

model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ds", String(10), nullable=False),
    Column("event", String(16), nullable=False),  # registered | promoted | rolled_back
    Column("model_name", String(128), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("from_version", Integer),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    UniqueConstraint("ds", "event", "model_name", "model_version", name="uq_model_event"),
)

# What a day found, one row per (day, condition kind): severity info | warning | critical. The row belongs to
# the episode of that condition it extended (churnguard.alerts), which decides what is notified.
alerts = Table(
    "alerts",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("episode_id", Integer),  # alert_episodes.id (null: a backfilled day outside any episode)
    Column("link", Text),
)

# One condition (kind) from the day it was first seen until a day found it cleared: consecutive days extend
# it instead of raising new alerts. Acknowledged (once: the first acknowledgement stays), an open episode
# notifies nothing more until it clears.
alert_episodes = Table(
    "alert_episodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("first_ds", String(10), nullable=False),
    Column("last_ds", String(10), nullable=False),  # the last day the condition was seen
    Column("severity", String(16), nullable=False),  # the highest severity seen in the episode
    Column("message", Text, nullable=False),  # the latest day's message
    Column("state", String(8), nullable=False),  # open | cleared
    Column("cleared_ds", String(10)),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), onupdate=func.now()),
    Column("acknowledged_by", Text),  # the Airflow user who acknowledged it
    Column("acknowledged_at", DateTime(timezone=True)),
)

# Notifications decided by churnguard.alerts, recorded before anything is sent: at most one per (episode,
# change, severity). pending -> claimed (by one deliverer, atomically) -> sent | failed; a crash after the claim
# leaves it claimed, never sent twice.
alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("episode_id", Integer, nullable=False),
    Column("ds", String(10), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("change", String(16), nullable=False),  # opened | escalated | cleared
    Column("message", Text, nullable=False),
    Column("link", Text),
    Column("state", String(8), nullable=False),  # pending | claimed | sent | failed | skipped
    Column("channels", JSON),  # channel -> "sent" or the error
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("episode_id", "change", "severity", name="uq_alert_notification"),
)

# The newest day observed per condition kind (alert or clear): an older day is a backfill and notifies nothing.
alert_watermarks = Table(
    "alert_watermarks",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("last_ds", String(10), nullable=False),
)

# An alias move (promotion or rollback) recorded as an intention before the first alias changes: a retry
# after a crash completes it from the recorded versions, never from whatever the aliases point at by then.
alias_moves = Table(
    "alias_moves",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ds", String(10), nullable=False),
    Column("event", String(16), nullable=False),  # promoted | rolled_back | assigned (bootstrap)
    Column("model_name", String(128), nullable=False),
    Column("to_version", Integer, nullable=False),
    Column("from_version", Integer),
    Column("clear_challenger", Boolean, nullable=False),
    Column("reason", Text),
    Column("state", String(8), nullable=False),  # pending | done
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

# The model versions a day is monitored with, pinned the first time the day is processed: every step of
# that day, and any re-run of it, scores, validates and compares with these, whatever the aliases say later.
day_models = Table(
    "day_models",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("champion_version", Integer, nullable=False),
    Column("challenger_version", Integer),
    Column("pinned_at", DateTime(timezone=True), server_default=func.now()),
)

# Each step's small result for the day (what the DAG used to pass through XCom): later steps and publish
# read the day's results here.
day_steps = Table(
    "day_steps",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("result", JSON, nullable=False),
)

# Summaries that belong to a model version and are computed once for it (e.g. the failure model's
# reference of the champion's scores on the test split).
model_summaries = Table(
    "model_summaries",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("model_version", Integer, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("value", JSON, nullable=False),
)

# Each label delivery (a ``labels/ds=`` partition) and the date whose run measured it, once: a delivery that
# lands on a day whose batch was quarantined, or whose run crashed, is measured by the next run that gets to
# the performance step; a re-run of the measuring date measures it again, no other date does.
label_deliveries = Table(
    "label_deliveries",
    metadata,
    Column("delivery_ds", String(10), primary_key=True),
    Column("measured_ds", String(10), nullable=False),
    Column("status", String(16), nullable=False),  # pass | warn | fail | unreadable
    Column("rows", Integer),
)

# Which run processes a date: taken before the run's first write, renewed by each step, released when the run
# ends; a second run of the date waits (churnguard.lease).
day_leases = Table(
    "day_leases",
    metadata,
    Column("ds", String(10), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
