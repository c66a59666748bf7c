"""Change tracking for incremental readers: when each issue, event and movement was written,
and a version counter that bulk writers raise.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issues') as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_issues_updated_at', ['updated_at'])
    with op.batch_alter_table('issue_events') as batch_op:
        batch_op.add_column(sa.Column('recorded_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_issue_events_recorded_at', ['recorded_at'])
    with op.batch_alter_table('movements') as batch_op:
        batch_op.add_column(sa.Column('recorded_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_movements_recorded_at', ['recorded_at'])
    op.create_table('data_versions',
                    sa.Column('name', sa.String(length=32), nullable=False),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))


def downgrade() -> None:
    op.drop_table('data_versions')
    with op.batch_alter_table('movements') as batch_op:
        batch_op.drop_index('ix_movements_recorded_at')
        batch_op.drop_column('recorded_at')
    with op.batch_alter_table('issue_events') as batch_op:
        batch_op.drop_index('ix_issue_events_recorded_at')
        batch_op.drop_column('recorded_at')
    with op.batch_alter_table('issues') as batch_op:
        batch_op.drop_index('ix_issues_updated_at')
        batch_op.drop_column('updated_at')
