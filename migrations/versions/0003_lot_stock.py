"""Running lot balances, so the stock now is read without summing every movement ever made.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lot_stock',
                    sa.Column('lot', sa.String(length=64), nullable=False),
                    sa.Column('material_code', sa.String(length=64), nullable=False),
                    sa.Column('location_code', sa.String(length=64), nullable=False),
                    sa.Column('qty', sa.Float(), nullable=False),
                    sa.Column('last_in_at', sa.DateTime(), nullable=True),
                    sa.PrimaryKeyConstraint('lot', 'material_code', 'location_code'))
    # The balances of the movements already recorded, at the plant's stock locations.
    op.execute("""
        INSERT INTO lot_stock (lot, material_code, location_code, qty, last_in_at)
        SELECT f.lot, f.material_code, f.location_code, SUM(f.qty), MAX(f.in_at)
        FROM (SELECT lot, material_code, to_location_code AS location_code, qty, at AS in_at
              FROM movements
              UNION ALL
              SELECT lot, material_code, from_location_code, -qty, NULL FROM movements) f
        JOIN locations l ON l.code = f.location_code
        WHERE l.kind IN ('receiving', 'iqc', 'warehouse', 'line_side', 'wip', 'finished', 'scrap')
        GROUP BY f.lot, f.material_code, f.location_code
        HAVING ABS(SUM(f.qty)) > 1e-9
    """)


def downgrade() -> None:
    op.drop_table('lot_stock')
