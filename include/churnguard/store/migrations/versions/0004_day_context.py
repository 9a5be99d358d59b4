"""day_models, day_steps, model_summaries: the day context's pinned versions, step results and per-version summaries

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_models",
        sa.Column("ds", sa.String(length=10), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=False),
        sa.Column("challenger_version", sa.Integer(), nullable=True),
        sa.Column(
            "pinned_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=True
        ),
        sa.PrimaryKeyConstraint("ds"),
    )
    op.create_table(
        "day_steps",
        sa.Column("ds", sa.String(length=10), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("ds", "step"),
    )
    op.create_table(
        "model_summaries",
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "model_version", "kind"),
    )


def downgrade() -> None:
    op.drop_table("model_summaries")
    op.drop_table("day_steps")
    op.drop_table("day_models")
