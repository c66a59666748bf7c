"""Doors: people who sign in (argon2id hashes, lock-out), wall screens' tokens (sha256) and
the audit log.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=64), nullable=False),
                    sa.Column('role', sa.String(length=16), nullable=False),
                    sa.Column('password_hash', sa.String(length=200), nullable=False),
                    sa.Column('failed_attempts', sa.Integer(), nullable=False),
                    sa.Column('locked_until', sa.DateTime(), nullable=True),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('disabled_at', sa.DateTime(), nullable=True),
                    sa.CheckConstraint("role IN ('viewer', 'operator', 'manager', 'admin')",
                                       name='ck_user_role'),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('name'))
    op.create_table('screen_tokens',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=64), nullable=False),
                    sa.Column('token_sha256', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('last_used_at', sa.DateTime(), nullable=True),
                    sa.Column('revoked_at', sa.DateTime(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_sha256'))
    op.create_table('audit_log',
                    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                              nullable=False),
                    sa.Column('at', sa.DateTime(), nullable=False),
                    sa.Column('kind', sa.String(length=32), nullable=False),
                    sa.Column('who', sa.String(length=100), nullable=False),
                    sa.Column('address', sa.String(length=64), nullable=True),
                    sa.Column('detail', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('screen_tokens')
    op.drop_table('users')
