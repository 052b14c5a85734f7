"""audit chain: keyed (HMAC) chain over every stored field (issue 15)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing events keep NULL: they are verified as plain SHA-256 ("unkeyed")
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alg', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('alg')
