"""Alembic environment: runs on the connection the caller hands over, or offline on a URL."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    raise RuntimeError("ledgerca migrations run through `ledgerca db upgrade`")
