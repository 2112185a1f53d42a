"""Statements PostgreSQL plans once per connection, for the queries every request runs."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends.utils import CursorWrapper


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements are prepared on the server (after the connection's
    `prepare_threshold` runs of the same SQL; see DB_PREPARED_STATEMENTS in settings).

    Django's own PostgreSQL cursors bind parameters on the client and so never prepare: every
    query is planned again, which for a query of several joins costs more than running it. This
    one binds on the server, wrapped as Django wraps its own cursors (execute wrappers, error
    translation). While queries are being logged (DEBUG, a test counting queries) it is Django's
    own cursor instead: a server-bound query leaves no SQL text for the log. PostgreSQL only.
    """
    if connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg  # only on PostgreSQL; SQLite installs need not have it

    connection.ensure_connection()
    with CursorWrapper(psycopg.Cursor(connection.connection), connection) as cursor:
        yield cursor
