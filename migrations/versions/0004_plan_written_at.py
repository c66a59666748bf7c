"""When each production plan row was written, so incremental readers re-read the plan only
after a report.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('production_plan') as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_plan_updated_at', ['updated_at'])


def downgrade() -> None:
    with op.batch_alter_table('production_plan') as batch_op:
        batch_op.drop_index('ix_plan_updated_at')
        batch_op.drop_column('updated_at')
