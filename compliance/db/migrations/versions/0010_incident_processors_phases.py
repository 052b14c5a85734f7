"""incident register: who found it, processors, phased notification, message to the people (issue 14)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import compliance.db.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('found_by', sa.String(length=20), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('processor_discovered_at', compliance.db.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('processor_told_at', compliance.db.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('ap_instruction', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('incident_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_items', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('follow_up_due', compliance.db.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('message', sa.JSON(), nullable=True))


def downgrade() -> None:
    # plain columns, dropped in place (SQLite 3.35+): recreating `incidents` would trip the foreign keys of
    # the tables that refer to it once incidents exist
    with op.batch_alter_table('incident_notifications', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('message')
        batch_op.drop_column('follow_up_due')
        batch_op.drop_column('open_items')
    with op.batch_alter_table('incidents', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('ap_instruction')
        batch_op.drop_column('processor_told_at')
        batch_op.drop_column('processor_discovered_at')
        batch_op.drop_column('found_by')
