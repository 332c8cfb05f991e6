"""alembic's entry point for dockyard's metadata schema: runs the revisions on the connection it is given.

:func:`dockyard.server.storage.schema.upgrade` passes an open connection in ``config.attributes["connection"]``;
nothing here reads an ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
