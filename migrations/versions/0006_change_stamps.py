"""The database stamps what other programs write, so the wall follows every writer
(docs/outside-writers.md).

A row of a followed table inserted without its stamp, or updated without changing it, gets
the database's UTC clock as its stamp; FloorLink's own writers set their stamps and are left
alone. A movement inserted without its stamp also moves its lot's running balance, as the
write path does. A change to a table the wall reads whole (departments, people, rules,
locations, materials), or a deletion from a followed one, raises the 'outside' data version:
the wall reloads.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Followed table -> its stamp column (data.store._WRITTEN_AT).
STAMPS = {"issues": "updated_at", "issue_events": "recorded_at", "movements": "recorded_at",
          "production_plan": "updated_at"}
# Tables the wall reads in full on a reload: any change to them means a reload.
RELOADED = ("departments", "people", "sla_rules", "locations", "materials")
# data.queries.STOCK_KINDS: the locations lot_stock keeps balances at.
STOCK_KINDS = "('receiving', 'iqc', 'warehouse', 'line_side', 'wip', 'finished', 'scrap')"
# Its own counter beside the bulk writers' one: the wall reloads when either moves
# (data.queries.data_version).
BUMP = ("INSERT INTO data_versions (name, version) VALUES ('outside', 1) "
        "ON CONFLICT (name) DO UPDATE SET version = data_versions.version + 1")
# UtcDateTime's text on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLite's clock has milliseconds).
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"


def _lot_moves(new: str, now_lot: str) -> list[str]:
    """The statements that move a lot's running balance by one movement `new` (NEW), in
    the dialect's upsert; `now_lot` is how the dialect names the lot being moved."""
    into = (f"INSERT INTO lot_stock (lot, material_code, location_code, qty, last_in_at) "
            f"SELECT {new}.lot, {new}.material_code, {new}.to_location_code, {new}.qty, {new}.at "
            f"FROM locations WHERE code = {new}.to_location_code AND kind IN {STOCK_KINDS} "
            f"ON CONFLICT (lot, material_code, location_code) DO UPDATE SET "
            f"qty = lot_stock.qty + excluded.qty, last_in_at = CASE "
            f"WHEN lot_stock.last_in_at IS NULL OR lot_stock.last_in_at < excluded.last_in_at "
            f"THEN excluded.last_in_at ELSE lot_stock.last_in_at END")
    out_of = (f"INSERT INTO lot_stock (lot, material_code, location_code, qty, last_in_at) "
              f"SELECT {new}.lot, {new}.material_code, {new}.from_location_code, -{new}.qty, NULL "
              f"FROM locations WHERE code = {new}.from_location_code AND kind IN {STOCK_KINDS} "
              f"ON CONFLICT (lot, material_code, location_code) DO UPDATE SET "
              f"qty = lot_stock.qty + excluded.qty")
    emptied = f"DELETE FROM lot_stock WHERE lot = {now_lot} AND ABS(qty) <= 1e-9"
    return [into, out_of, emptied]


def _sqlite_upgrade() -> None:
    for table, stamp in STAMPS.items():
        stamped = f"UPDATE {table} SET {stamp} = {SQLITE_NOW} WHERE rowid = NEW.rowid"
        lots = "".join(f"{s}; " for s in _lot_moves("NEW", "NEW.lot")) if table == "movements" else ""
        op.execute(f"CREATE TRIGGER fl_{table}_stamp_insert AFTER INSERT ON {table} "
                   f"WHEN NEW.{stamp} IS NULL BEGIN {stamped}; {lots}END")
        op.execute(f"CREATE TRIGGER fl_{table}_stamp_update AFTER UPDATE ON {table} "
                   f"WHEN NEW.{stamp} IS OLD.{stamp} BEGIN {stamped}; END")
        op.execute(f"CREATE TRIGGER fl_{table}_reload_delete AFTER DELETE ON {table} "
                   f"BEGIN {BUMP}; END")
    for table in RELOADED:
        for change in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER fl_{table}_reload_{change.lower()} AFTER {change} ON {table} "
                       f"BEGIN {BUMP}; END")


def _postgresql_upgrade() -> None:
    for stamp in sorted(set(STAMPS.values())):
        op.execute(f"""
            CREATE FUNCTION fl_stamp_{stamp}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (TG_OP = 'INSERT' AND NEW.{stamp} IS NULL)
                        OR (TG_OP = 'UPDATE' AND NEW.{stamp} IS NOT DISTINCT FROM OLD.{stamp}) THEN
                    NEW.{stamp} := clock_timestamp() AT TIME ZONE 'UTC';
                END IF;
                RETURN NEW;
            END $$""")
    lots = "".join(f"{s};\n" for s in _lot_moves("NEW", "NEW.lot"))
    op.execute(f"""
        CREATE FUNCTION fl_outside_movement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.recorded_at IS NULL THEN
                {lots}
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION fl_reload() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {BUMP};
            RETURN NULL;
        END $$""")
    # The balance moves before the stamp is set: the stamp trigger runs after it (by name).
    op.execute("CREATE TRIGGER fl_movements_lot BEFORE INSERT ON movements "
               "FOR EACH ROW EXECUTE FUNCTION fl_outside_movement()")
    for table, stamp in STAMPS.items():
        op.execute(f"CREATE TRIGGER fl_{table}_stamp BEFORE INSERT OR UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION fl_stamp_{stamp}()")
        op.execute(f"CREATE TRIGGER fl_{table}_reload AFTER DELETE OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION fl_reload()")
    for table in RELOADED:
        op.execute(f"CREATE TRIGGER fl_{table}_reload AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION fl_reload()")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in STAMPS:
            for name in ("stamp_insert", "stamp_update", "reload_delete"):
                op.execute(f"DROP TRIGGER IF EXISTS fl_{table}_{name}")
        for table in RELOADED:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS fl_{table}_reload_{change}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS fl_movements_lot ON movements")
        for table in STAMPS:
            op.execute(f"DROP TRIGGER IF EXISTS fl_{table}_stamp ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS fl_{table}_reload ON {table}")
        for table in RELOADED:
            op.execute(f"DROP TRIGGER IF EXISTS fl_{table}_reload ON {table}")
        for function in ("fl_stamp_updated_at", "fl_stamp_recorded_at", "fl_outside_movement",
                         "fl_reload"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
