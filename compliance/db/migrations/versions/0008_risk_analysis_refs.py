"""risk analysis references on applicability decisions and exceptions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the ENSIA annex of deviations names the risk analysis behind each measure not applied or deviated from
    with op.batch_alter_table('applicability', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_analysis', sa.String(length=500), nullable=True))
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_analysis', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.drop_column('risk_analysis')
    with op.batch_alter_table('applicability', schema=None) as batch_op:
        batch_op.drop_column('risk_analysis')
