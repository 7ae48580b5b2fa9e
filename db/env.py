"""Alembic environment for bisectlab's results database (package ``bisectlab.migrations``).

There is no alembic.ini: ``bisectlab.store.Store`` runs these migrations itself when it opens a
database, on its own connection (``config.attributes["connection"]``, inside its transaction).
To write a new revision, against a database already at the current head::

    from alembic import command
    from bisectlab.store import alembic_config
    command.revision(alembic_config("sqlite:///dev.sqlite"), "what changed", autogenerate=True)

then read and tidy the new file in db/versions/ and set ``bisectlab.store.SCHEMA_HEAD`` to its
revision (tests/test_store.py checks both).
"""

from alembic import context
from sqlalchemy import Connection, create_engine

from bisectlab.store import Base

TARGET = Base.metadata


def run_on(connection: Connection) -> None:
    """Run the migrations on a connection (batch mode, so SQLite can alter tables)."""
    context.configure(connection=connection, target_metadata=TARGET, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Offline (--sql), on the connection handed over by Store, or on sqlalchemy.url."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=TARGET, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run_on(conn)
    finally:
        engine.dispose()


run()
