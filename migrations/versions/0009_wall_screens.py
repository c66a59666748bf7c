"""The fleet: every wall screen that refreshes, as its last refresh left it.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wall_screens',
                    sa.Column('key', sa.String(length=100), nullable=False),
                    sa.Column('name', sa.String(length=64), nullable=True),
                    sa.Column('browser_id', sa.String(length=32), nullable=True),
                    sa.Column('address', sa.String(length=64), nullable=True),
                    sa.Column('page', sa.String(length=32), nullable=False),
                    sa.Column('department', sa.String(length=64), nullable=True),
                    sa.Column('line', sa.String(length=64), nullable=True),
                    sa.Column('replay_at', sa.DateTime(), nullable=True),
                    sa.Column('lang', sa.String(length=8), nullable=False),
                    sa.Column('kiosk', sa.Boolean(), nullable=True),
                    sa.Column('build_id', sa.String(length=32), nullable=True),
                    sa.Column('user_agent', sa.String(length=300), nullable=True),
                    sa.Column('first_seen', sa.DateTime(), nullable=False),
                    sa.Column('last_refresh', sa.DateTime(), nullable=False),
                    sa.Column('last_outcome', sa.String(length=16), nullable=False),
                    sa.Column('outcome_since', sa.DateTime(), nullable=False),
                    sa.CheckConstraint("last_outcome IN ('ok', 'db_down', 'error')",
                                       name='ck_wall_screen_outcome'),
                    sa.PrimaryKeyConstraint('key'))
    op.create_index('ix_wall_screens_last_refresh', 'wall_screens', ['last_refresh'])


def downgrade() -> None:
    op.drop_index('ix_wall_screens_last_refresh', table_name='wall_screens')
    op.drop_table('wall_screens')
