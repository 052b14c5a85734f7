"""control translations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing rows get no translations; the next control sync fills them from the YAML
    with op.batch_alter_table('controls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('translations', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('controls', schema=None) as batch_op:
        batch_op.drop_column('translations')
