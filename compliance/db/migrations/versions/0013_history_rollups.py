"""history: daily rollups per control and target, so raw results can be pruned (issue 18)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import compliance.db.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('history_days',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('day_end', compliance.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('control_id', sa.String(length=100), nullable=False),
    sa.Column('check_index', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=500), nullable=False),
    sa.Column('worst_status', sa.String(length=10), nullable=False),
    sa.Column('passed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errored', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('last_at', compliance.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_scan_id', sa.BigInteger(), nullable=False),
    sa.Column('last_status', sa.String(length=10), nullable=False),
    sa.Column('last_message', sa.Text(), nullable=False),
    sa.Column('last_evidence', sa.JSON(), nullable=False),
    sa.Column('fail_at', compliance.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fail_message', sa.Text(), nullable=True),
    sa.Column('fail_evidence', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_history_days')),
    sa.UniqueConstraint('day', 'control_id', 'check_index', 'target', name='uq_history_days_day_control_id')
    )
    with op.batch_alter_table('history_days', schema=None) as batch_op:
        batch_op.create_index('ix_history_days_control_last_at', ['control_id', 'last_at'], unique=False)
        batch_op.create_index('ix_history_days_control_target_fail_at', ['control_id', 'target', 'fail_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_history_days_day_end'), ['day_end'], unique=False)


def downgrade() -> None:
    # the rolled-up days' raw results are gone: going back loses their trend, never the findings
    with op.batch_alter_table('history_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_history_days_day_end'))
        batch_op.drop_index('ix_history_days_control_target_fail_at')
        batch_op.drop_index('ix_history_days_control_last_at')
    op.drop_table('history_days')
