"""report indexes: a control's results and a finding's changes by time, for the risk overview

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 16:16:39.605617
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.create_index('ix_check_results_control_at', ['control_id', 'started_at'], unique=False)
    with op.batch_alter_table('finding_changes', schema=None) as batch_op:
        batch_op.create_index('ix_finding_changes_finding_at', ['finding_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('finding_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_finding_changes_finding_at')
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.drop_index('ix_check_results_control_at')
