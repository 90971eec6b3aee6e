"""A submit's `Idempotency-Key` and the fingerprint of the spec it came with, unique per owner.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        jobs.add_column(sa.Column("request_fingerprint", sa.String(64), nullable=True))
        # NULLs are distinct in a unique index (SQLite and PostgreSQL): keyless jobs never clash.
        jobs.create_index(
            "ix_jobs_owner_idempotency_key", ["owner", "idempotency_key"], unique=True
        )
