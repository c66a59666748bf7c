"""The weekly review: the packs frozen per week, the meeting's action register, and
deliveries that are about a week rather than an issue.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('weekly_packs',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('week', sa.String(length=8), nullable=False),
                    sa.Column('built_at', sa.DateTime(), nullable=False),
                    sa.Column('as_of', sa.DateTime(), nullable=False),
                    sa.Column('built_by', sa.String(length=100), nullable=False),
                    sa.Column('pack', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('week'))
    op.create_table('review_actions',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('problem', sa.Text(), nullable=False),
                    sa.Column('about', sa.String(length=400), nullable=False),
                    sa.Column('countermeasure', sa.Text(), nullable=False),
                    sa.Column('owner', sa.String(length=100), nullable=False),
                    sa.Column('department_code', sa.String(length=32), nullable=False),
                    sa.Column('due', sa.Date(), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('evidence', sa.Text(), nullable=False),
                    sa.Column('opened_week', sa.String(length=8), nullable=False),
                    sa.Column('closed_week', sa.String(length=8), nullable=True),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('created_by', sa.String(length=100), nullable=False),
                    sa.Column('updated_at', sa.DateTime(), nullable=False),
                    sa.Column('updated_by', sa.String(length=100), nullable=False),
                    sa.Column('status_history', sa.Text(), nullable=False),
                    sa.CheckConstraint(
                        "status IN ('open', 'in_progress', 'done', 'verified', 'dropped')",
                        name='ck_review_action_status'),
                    sa.ForeignKeyConstraint(['department_code'], ['departments.code']),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_review_actions_opened_week', 'review_actions', ['opened_week'])
    # A delivery need not be about an issue: the scheduled weekly pack's message is about a week.
    with op.batch_alter_table('notify_outbox') as batch_op:
        batch_op.alter_column('issue_id', existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM notify_outbox WHERE issue_id IS NULL")
    with op.batch_alter_table('notify_outbox') as batch_op:
        batch_op.alter_column('issue_id', existing_type=sa.String(length=64), nullable=False)
    op.drop_index('ix_review_actions_opened_week', table_name='review_actions')
    op.drop_table('review_actions')
    op.drop_table('weekly_packs')
