"""Why a job was asked to stop (user, preempted, cancelled) replaces the `requeue` flag.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("stop_reason", sa.String(16), nullable=True))
        jobs.drop_column("requeue")
