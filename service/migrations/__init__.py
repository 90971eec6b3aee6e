"""The job store's schema, as Alembic revisions applied by `Store` when it opens a database.

A database made before these migrations existed (tables but no `alembic_version`) is taken to
be at the first revision, which created exactly those tables, and is upgraded from there.
New revision: add `versions/NNNN_what.py` with `revision`/`down_revision` and `upgrade()`.
"""
