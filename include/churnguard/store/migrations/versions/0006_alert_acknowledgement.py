"""alert acknowledgement: alert_episodes.acknowledged_by and alert_episodes.acknowledged_at

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_episodes") as batch:
        batch.add_column(sa.Column("acknowledged_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_episodes") as batch:
        batch.drop_column("acknowledged_at")
        batch.drop_column("acknowledged_by")
