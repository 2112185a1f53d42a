"""Statements PostgreSQL plans once per connection, for the queries every request runs."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements are prepared on the server at their first run on the
    connection (unless settings.DB_PREPARED_STATEMENTS is off).

    Django's own PostgreSQL cursors bind parameters on the client and so never prepare: every
    query is planned again, which for a query of several joins costs more than running it. This
    one binds on the server, wrapped as Django wraps its own cursors (execute wrappers, error
    translation). While queries are being logged (DEBUG, a test counting queries) it is Django's
    own cursor instead: a server-bound query leaves no SQL text for the log. PostgreSQL only.

    psycopg's prepare threshold is on only while this cursor runs: with it on, psycopg would
    also track every query Django runs (by its full text, parameters inlined), up to a hundred.
    """
    if connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg  # only on PostgreSQL; SQLite installs need not have it

    # What Django does before handing out a cursor: the per-request health check (CONN_HEALTH_CHECKS)
    # of a reused connection, and the connection itself.
    connection.validate_thread_sharing()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    raw.prepare_threshold = 0 if settings.DB_PREPARED_STATEMENTS else None
    try:
        with CursorWrapper(psycopg.Cursor(raw), connection) as cursor:
            yield cursor
    finally:
        raw.prepare_threshold = None


class ModelColumns:
    """One model's columns in a hand-written select, and the instance built from a row of it
    (`Model.from_db`, as the ORM builds it): for the per-request reads on prepared statements."""

    def __init__(self, model, alias: str, start: int = 0):
        self.model = model
        fields = model._meta.concrete_fields
        self.sql = ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields)
        self.names = [f.attname for f in fields]
        self.span = slice(start, start + len(fields))
        self.pk_index = fields.index(model._meta.pk)
        # Field-level conversions (JSON and the like); PostgreSQL's driver gives native types.
        self.converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]

    def build(self, row):
        """The instance from its span of `row`; None where an outer join found no row."""
        values = row[self.span]
        if values[self.pk_index] is None:
            return None
        if self.converters:
            values = list(values)
            for i, convert in self.converters:
                values[i] = convert(values[i], None, connection)
        return self.model.from_db(connection.alias, self.names, values)


def insert_row(instance, *, durable: bool = True) -> None:
    """INSERT one new row for `instance`, as `save(force_insert=True)` would, in one prepared
    statement on PostgreSQL. For rows written on every quote and switch (quotes, ledger rows);
    it sends no model signals, so it is only for models nothing listens to.

    `durable=False`, outside a transaction: the row's commit does not wait for its WAL flush
    (PostgreSQL's asynchronous commit, for this statement alone). A crash in the next instant
    may lose the row, never the database's consistency: only for rows whose loss is harmless.
    Inside a transaction the commit is the transaction's, and stays durable."""
    if connection.vendor != "postgresql":
        instance.save(force_insert=True)
        return
    asynchronous = not durable and not connection.in_atomic_block
    sql, fields, returned = _insert_sql(type(instance), asynchronous)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with prepared_cursor() as cursor:
        cursor.execute(sql, values)
        if returned is not None:
            setattr(instance, returned.attname, cursor.fetchone()[0])
    instance._state.adding = False
    instance._state.db = connection.alias


def update_row(instance, *, fields: list[str]) -> None:
    """`save(update_fields=fields)` (auto_now fields included) in one prepared statement on
    PostgreSQL; the same limits as insert_row."""
    meta = instance._meta
    names = [*fields, *(f.name for f in meta.concrete_fields if getattr(f, "auto_now", False) and f.name not in fields)]
    if connection.vendor != "postgresql":
        instance.save(update_fields=names)
        return
    chosen = [meta.get_field(name) for name in names]
    values = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in chosen]
    with prepared_cursor() as cursor:
        cursor.execute(_update_sql(type(instance), tuple(names)), [*values, instance.pk])


@cache
def _insert_sql(model, asynchronous: bool) -> tuple[str, list, object]:
    meta = model._meta
    # A database-generated key (AutoField) is left out and read back; any other is sent.
    generated = meta.pk if getattr(meta.pk, "db_returning", False) else None
    fields = [f for f in meta.concrete_fields if f is not generated]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    if asynchronous:
        # set_config(..., is_local => true) lasts until this statement's own commit.
        source = f"SELECT {placeholders} FROM (SELECT set_config('synchronous_commit', 'off', true)) AS a"  # noqa: S608
    else:
        source = f"VALUES ({placeholders})"
    # Built from the model's metadata; every value is a parameter.
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) {source}"  # noqa: S608
    if generated is not None:
        sql += f" RETURNING {connection.ops.quote_name(generated.column)}"
    return sql, fields, generated


@cache
def _update_sql(model, names: tuple[str, ...]) -> str:
    meta = model._meta
    assignments = ", ".join(f"{connection.ops.quote_name(meta.get_field(n).column)} = %s" for n in names)
    return (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments}"  # noqa: S608
        f" WHERE {connection.ops.quote_name(meta.pk.column)} = %s"
    )
