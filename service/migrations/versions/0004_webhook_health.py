"""Webhook health: failures in a row, and when and why a webhook was disabled.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as webhooks:
        webhooks.add_column(
            sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0")
        )
        webhooks.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        webhooks.add_column(sa.Column("disabled_reason", sa.Text, nullable=True))
