"""Push and escalation: the policy, silences, the ladder steps taken, the outbox, the acknowledgement links' uses,
the sender's lease and the photos taken at a station.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('notify_policies',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('imported_at', sa.DateTime(), nullable=False),
                    sa.Column('imported_by', sa.String(length=100), nullable=False),
                    sa.Column('source', sa.String(length=200), nullable=False),
                    sa.Column('document', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('notify_silences',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('starts_at', sa.DateTime(), nullable=False),
                    sa.Column('ends_at', sa.DateTime(), nullable=False),
                    sa.Column('department_code', sa.String(length=32), nullable=True),
                    sa.Column('line', sa.String(length=32), nullable=True),
                    sa.Column('location_code', sa.String(length=64), nullable=True),
                    sa.Column('issue_type', sa.String(length=64), nullable=True),
                    sa.Column('reason', sa.Text(), nullable=False),
                    sa.Column('created_by', sa.String(length=100), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.CheckConstraint('ends_at > starts_at', name='ck_silence_ends_after_start'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_notify_silences_ends_at', 'notify_silences', ['ends_at'])
    op.create_table('notify_steps',
                    sa.Column('issue_id', sa.String(length=64), nullable=False),
                    sa.Column('step', sa.String(length=32), nullable=False),
                    sa.Column('level', sa.Integer(), nullable=False),
                    sa.Column('due_at', sa.DateTime(), nullable=False),
                    sa.Column('taken_at', sa.DateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('issue_id', 'step'))
    op.create_table('notify_outbox',
                    sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
                    sa.Column('key', sa.String(length=200), nullable=False),
                    sa.Column('issue_id', sa.String(length=64), nullable=False),
                    sa.Column('step', sa.String(length=32), nullable=False),
                    sa.Column('level', sa.Integer(), nullable=False),
                    sa.Column('channel_code', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('deliver_after', sa.DateTime(), nullable=False),
                    sa.Column('message', sa.Text(), nullable=False),
                    sa.Column('status', sa.String(length=16), nullable=False),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
                    sa.Column('last_error', sa.Text(), nullable=True),
                    sa.Column('sent_at', sa.DateTime(), nullable=True),
                    sa.Column('sent_in', _BIG_ID, nullable=True),
                    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name='ck_delivery_status'),
                    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('key'))
    op.create_index('ix_notify_outbox_due', 'notify_outbox', ['status', 'next_attempt_at'])
    op.create_index('ix_notify_outbox_issue', 'notify_outbox', ['issue_id'])
    op.create_index('ix_notify_outbox_created_at', 'notify_outbox', ['created_at'])
    op.create_index('ix_notify_outbox_sent_in', 'notify_outbox', ['sent_in'])
    op.create_table('ack_link_uses',
                    sa.Column('nonce', sa.String(length=32), nullable=False),
                    sa.Column('issue_id', sa.String(length=64), nullable=False),
                    sa.Column('used_at', sa.DateTime(), nullable=False),
                    sa.Column('action', sa.String(length=16), nullable=False),
                    sa.Column('actor', sa.String(length=100), nullable=False),
                    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('nonce'))
    op.create_table('notify_lease',
                    sa.Column('name', sa.String(length=32), nullable=False),
                    sa.Column('holder', sa.String(length=100), nullable=False),
                    sa.Column('expires_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    op.create_table('issue_photos',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('issue_id', sa.String(length=64), nullable=False),
                    sa.Column('at', sa.DateTime(), nullable=False),
                    sa.Column('content_type', sa.String(length=32), nullable=False),
                    sa.Column('data', sa.LargeBinary(), nullable=False),
                    sa.Column('sha256', sa.String(length=64), nullable=False),
                    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_issue_photos_issue', 'issue_photos', ['issue_id'])


def downgrade() -> None:
    op.drop_index('ix_issue_photos_issue', table_name='issue_photos')
    op.drop_table('issue_photos')
    op.drop_table('notify_lease')
    op.drop_table('ack_link_uses')
    op.drop_index('ix_notify_outbox_sent_in', table_name='notify_outbox')
    op.drop_index('ix_notify_outbox_created_at', table_name='notify_outbox')
    op.drop_index('ix_notify_outbox_issue', table_name='notify_outbox')
    op.drop_index('ix_notify_outbox_due', table_name='notify_outbox')
    op.drop_table('notify_outbox')
    op.drop_table('notify_steps')
    op.drop_index('ix_notify_silences_ends_at', table_name='notify_silences')
    op.drop_table('notify_silences')
    op.drop_table('notify_policies')
