"""organisations: several municipalities in one install, each with its own database

The register of organisations. An existing database becomes the data of a first organisation,
`default` (rename it with `compliance org rename default CODE --name NAME`); nothing else changes, so
with one organisation the monitor works as before. Organisations added later (`compliance org add`)
get a database of their own: an SQLite file beside this one or a schema on the same PostgreSQL server.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 07:20:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import compliance.db.models

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'organisations',
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('location', sa.String(length=200), nullable=False),
        sa.Column('created_at', compliance.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_organisations')),
    )
    op.bulk_insert(table, [{"code": "default", "name": "", "location": "", "created_at": datetime.now(UTC),
                            "created_by": "compliance db upgrade"}])


def downgrade() -> None:
    op.drop_table('organisations')
