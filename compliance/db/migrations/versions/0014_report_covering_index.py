"""report covering index: a control's results by time with their status and scan, read from the index alone

The risk overview reads, per control and trend moment, the newest result before the moment (its time
and scan) and which statuses occurred in that scan. With status and scan_id in the index those reads
never touch the result rows (with their messages and evidence), which on a cold file cache is the
difference between reading a few index pages and reading a year of rows page by page. The index has
the old `ix_check_results_control_at` (control_id, started_at) as its prefix and replaces it.

Building the index reads check_results once (on PostgreSQL it blocks writes to the table meanwhile:
upgrade between scans).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 04:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_check_results_control_at_status', 'check_results',
                    ['control_id', 'started_at', 'status', 'scan_id'], unique=False)
    op.drop_index('ix_check_results_control_at', table_name='check_results')


def downgrade() -> None:
    op.create_index('ix_check_results_control_at', 'check_results', ['control_id', 'started_at'], unique=False)
    op.drop_index('ix_check_results_control_at_status', table_name='check_results')
