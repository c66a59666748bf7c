"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL: a
column changed in one and not the other fails here, not in a plant's database."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from data import db
from data.models import Base


def test_the_migrated_schema_is_the_models_schema(db_url):
    with db.get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_event_ids_do_not_run_out_at_two_billion(db_url):
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (code, name_zh, name_en) VALUES ('QA', '质量', 'Quality')"))
        conn.execute(text("INSERT INTO sla_rules (issue_type, name_zh, name_en, owner_department_code, "
                          "notify_department_codes, ack_minutes, resolve_minutes) "
                          "VALUES ('q', '质量', 'Quality', 'QA', '', 15, 120)"))
        conn.execute(text("INSERT INTO issues (id, issue_type, title, severity, raised_at, "
                          "owner_department_code, status) VALUES ('I-1', 'q', 't', 'P1', "
                          "'2026-11-20 02:00:00.000000', 'QA', 'open')"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('issue_events_id_seq', 3000000000)"))
        else:   # the next rowid follows the largest
            conn.execute(text("INSERT INTO issue_events (id, issue_id, at, kind, department_code) "
                              "VALUES (3000000000, 'I-1', '2026-11-20 01:00:00.000000', 'raised', 'QA')"))
        conn.execute(text("INSERT INTO issue_events (issue_id, at, kind, department_code) "
                          "VALUES ('I-1', '2026-11-20 02:00:00.000000', 'acknowledged', 'QA')"))
        assert conn.execute(text("SELECT max(id) FROM issue_events")).scalar_one() > 3 * 10**9
