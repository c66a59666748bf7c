"""Canonical tables of the data contract, with the indexes the windowed queries use.

Instants are naive UTC columns (see data.models.UtcDateTime).

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 07:27:04.460666
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('departments',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('locations',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('line', sa.String(length=32), nullable=True),
    sa.Column('max_dwell_minutes', sa.Float(), nullable=True),
    sa.CheckConstraint("kind IN ('supplier', 'receiving', 'iqc', 'warehouse', 'line_side', 'wip', 'finished', 'customer', 'scrap', 'consumption')", name='ck_location_kind'),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('materials',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('production_plan',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('line', sa.String(length=32), nullable=False),
    sa.Column('shift_start', sa.DateTime(), nullable=False),
    sa.Column('shift_end', sa.DateTime(), nullable=False),
    sa.Column('planned_qty', sa.Float(), nullable=False),
    sa.Column('actual_qty', sa.Float(), nullable=True),
    sa.CheckConstraint('shift_end > shift_start', name='ck_plan_shift_order'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('line', 'shift_start', name='uq_plan_line_shift')
    )
    with op.batch_alter_table('production_plan', schema=None) as batch_op:
        batch_op.create_index('ix_plan_shift_start', ['shift_start'], unique=False)

    op.create_table('movements',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('material_code', sa.String(length=64), nullable=False),
    sa.Column('lot', sa.String(length=64), nullable=False),
    sa.Column('qty', sa.Float(), nullable=False),
    sa.Column('from_location_code', sa.String(length=64), nullable=False),
    sa.Column('to_location_code', sa.String(length=64), nullable=False),
    sa.Column('order_ref', sa.String(length=64), nullable=True),
    sa.CheckConstraint('qty > 0', name='ck_movement_qty_positive'),
    sa.ForeignKeyConstraint(['from_location_code'], ['locations.code'], ),
    sa.ForeignKeyConstraint(['material_code'], ['materials.code'], ),
    sa.ForeignKeyConstraint(['to_location_code'], ['locations.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('movements', schema=None) as batch_op:
        batch_op.create_index('ix_movements_at', ['at'], unique=False)
        batch_op.create_index('ix_movements_from_at', ['from_location_code', 'at'], unique=False)
        batch_op.create_index('ix_movements_lot', ['lot'], unique=False)
        batch_op.create_index('ix_movements_to_at', ['to_location_code', 'at'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('department_code', sa.String(length=32), nullable=False),
    sa.Column('im_handle', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('sla_rules',
    sa.Column('issue_type', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('owner_department_code', sa.String(length=32), nullable=False),
    sa.Column('notify_department_codes', sa.String(length=400), nullable=False),
    sa.Column('ack_minutes', sa.Float(), nullable=False),
    sa.Column('resolve_minutes', sa.Float(), nullable=False),
    sa.CheckConstraint('ack_minutes > 0', name='ck_sla_ack_positive'),
    sa.CheckConstraint('resolve_minutes >= ack_minutes', name='ck_sla_resolve_after_ack'),
    sa.ForeignKeyConstraint(['owner_department_code'], ['departments.code'], ),
    sa.PrimaryKeyConstraint('issue_type')
    )
    op.create_table('issues',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('issue_type', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=400), nullable=False),
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('location_code', sa.String(length=64), nullable=True),
    sa.Column('raised_by', sa.String(length=100), nullable=True),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('owner_department_code', sa.String(length=32), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.CheckConstraint("severity IN ('P1', 'P2', 'P3', 'P4')", name='ck_issue_severity'),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved', 'closed', 'cancelled')", name='ck_issue_status'),
    sa.ForeignKeyConstraint(['issue_type'], ['sla_rules.issue_type'], ),
    sa.ForeignKeyConstraint(['location_code'], ['locations.code'], ),
    sa.ForeignKeyConstraint(['owner_department_code'], ['departments.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.create_index('ix_issues_owner_raised_at', ['owner_department_code', 'raised_at'], unique=False)
        batch_op.create_index('ix_issues_raised_at', ['raised_at'], unique=False)
        batch_op.create_index('ix_issues_resolved_at', ['resolved_at'], unique=False)
        batch_op.create_index('ix_issues_unresolved', ['raised_at'], unique=False, sqlite_where=sa.text("resolved_at IS NULL AND status != 'cancelled'"), postgresql_where=sa.text("resolved_at IS NULL AND status != 'cancelled'"))

    op.create_table('issue_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('issue_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('department_code', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('raised', 'acknowledged', 'reassigned', 'escalated', 'commented', 'resolved', 'reopened', 'closed')", name='ck_event_kind'),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], ),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'at', 'kind', 'department_code', name='uq_issue_event')
    )
    with op.batch_alter_table('issue_events', schema=None) as batch_op:
        batch_op.create_index('ix_issue_events_at', ['at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('issue_events', schema=None) as batch_op:
        batch_op.drop_index('ix_issue_events_at')

    op.drop_table('issue_events')
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index('ix_issues_unresolved', sqlite_where=sa.text("resolved_at IS NULL AND status != 'cancelled'"), postgresql_where=sa.text("resolved_at IS NULL AND status != 'cancelled'"))
        batch_op.drop_index('ix_issues_resolved_at')
        batch_op.drop_index('ix_issues_raised_at')
        batch_op.drop_index('ix_issues_owner_raised_at')

    op.drop_table('issues')
    op.drop_table('sla_rules')
    op.drop_table('people')
    with op.batch_alter_table('movements', schema=None) as batch_op:
        batch_op.drop_index('ix_movements_to_at')
        batch_op.drop_index('ix_movements_lot')
        batch_op.drop_index('ix_movements_from_at')
        batch_op.drop_index('ix_movements_at')

    op.drop_table('movements')
    with op.batch_alter_table('production_plan', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_shift_start')

    op.drop_table('production_plan')
    op.drop_table('materials')
    op.drop_table('locations')
    op.drop_table('departments')
