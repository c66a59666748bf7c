"""Alembic environment: runs on the connection `data.db.upgrade_schema` hands over,
or on DATABASE_URL when called as `alembic upgrade head` from the project root."""
from alembic import context

from data import db
from data.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    with db.get_engine().begin() as conn:
        run_migrations(conn)
