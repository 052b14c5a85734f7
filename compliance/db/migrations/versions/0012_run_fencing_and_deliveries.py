"""scheduler: run fencing by leader epoch, process start time, partly sent deliveries (issue 15)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the leader epoch: raised at every change of leader; a run finishes only in the epoch it started in
    with op.batch_alter_table('scheduler_lock', schema=None) as batch_op:
        batch_op.add_column(sa.Column('epoch', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('epoch', sa.BigInteger(), nullable=True))
    # a delivery some recipients refused: which, with the server's answer
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refused', sa.JSON(), nullable=True))


def downgrade() -> None:
    # before 0012 a delivery was sent or not: partly sent counts as sent, so it is not sent again
    op.execute("UPDATE deliveries SET result = 'sent' WHERE result = 'partial'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('refused')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('epoch')
    with op.batch_alter_table('scheduler_lock', schema=None) as batch_op:
        batch_op.drop_column('epoch')
