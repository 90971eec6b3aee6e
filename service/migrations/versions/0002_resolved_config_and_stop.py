"""Jobs keep their resolved algorithm config and when a stop was asked for.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("resolved_config", sa.JSON, nullable=True))
        jobs.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True))
