"""The ingest API: tokens per source (hashed), answers kept for idempotent retries, and the
source of each event.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('source', sa.String(length=64), nullable=False),
                    sa.Column('token_sha256', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('last_used_at', sa.DateTime(), nullable=True),
                    sa.Column('revoked_at', sa.DateTime(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_sha256'))
    op.create_table('api_answers',
                    sa.Column('source', sa.String(length=64), nullable=False),
                    sa.Column('key', sa.String(length=200), nullable=False),
                    sa.Column('fingerprint', sa.String(length=64), nullable=False),
                    sa.Column('status', sa.Integer(), nullable=False),
                    sa.Column('body', sa.Text(), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('source', 'key'))
    op.create_index('ix_api_answers_created_at', 'api_answers', ['created_at'])
    with op.batch_alter_table('issue_events') as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('issue_events') as batch_op:
        batch_op.drop_column('source')
    op.drop_index('ix_api_answers_created_at', table_name='api_answers')
    op.drop_table('api_answers')
    op.drop_table('api_tokens')
