"""label_deliveries, day_leases: which run measured each label delivery; which run holds each date

Revision ID: 0007
Revises: 0006

``label_deliveries`` is filled from the performance results recorded so far (each names the deliveries it
measured), so an upgraded store does not measure its history's deliveries a second time.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    deliveries = op.create_table(
        "label_deliveries",
        sa.Column("delivery_ds", sa.String(length=10), nullable=False),
        sa.Column("measured_ds", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("delivery_ds"),
    )
    op.create_table(
        "day_leases",
        sa.Column("ds", sa.String(length=10), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ds"),
    )
    steps = op.get_bind().execute(sa.text("SELECT ds, result FROM day_steps WHERE step = 'performance' ORDER BY ds"))
    measured: dict[str, dict] = {}
    for ds, result in steps:
        result = json.loads(result) if isinstance(result, str) else result
        for delivery in (result or {}).get("deliveries", []):
            measured.setdefault(
                str(delivery["ds"]),
                {
                    "delivery_ds": str(delivery["ds"]),
                    "measured_ds": ds,
                    "status": delivery["status"],
                    "rows": delivery.get("rows"),
                },
            )
    if measured:
        op.bulk_insert(deliveries, list(measured.values()))


def downgrade() -> None:
    op.drop_table("day_leases")
    op.drop_table("label_deliveries")
