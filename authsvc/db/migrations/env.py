"""Alembic environment: runs on the connection ``authsvc.db.schema.upgrade`` hands it."""

from alembic import context

from authsvc.db.models import db

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=db.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
