"""Statements PostgreSQL plans once per connection, for the queries every request runs."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
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
    sql, fields, returned = _insert_sql(type(instance), ASYNCHRONOUS_COMMIT if asynchronous else None)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with prepared_cursor() as cursor:
        cursor.execute(sql, values)
        if returned is not None:
            setattr(instance, returned.attname, cursor.fetchone()[0])
    instance._state.adding = False
    instance._state.db = connection.alias


# A FROM item that turns on asynchronous commit for the statement's own transaction alone:
# set_config(..., is_local => true) lasts until that transaction commits.
ASYNCHRONOUS_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit"


@cache
def _insert_sql(model, select_from: str | None = None) -> tuple[str, list, object]:
    """INSERT of one row of `model`: its VALUES, or with `select_from` its values SELECTed
    from that FROM item (one row: the values, none: nothing inserted)."""
    meta = model._meta
    # A database-generated key (AutoField) is left out and read back; any other is sent.
    generated = meta.pk if getattr(meta.pk, "db_returning", False) else None
    fields = [f for f in meta.concrete_fields if f is not generated]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Built from the model's metadata and the caller's constant FROM item; every value is a parameter.
    source = f"VALUES ({placeholders})" if select_from is None else f"SELECT {placeholders} FROM {select_from}"  # noqa: S608
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) {source}"  # noqa: S608
    if generated is not None:
        sql += f" RETURNING {connection.ops.quote_name(generated.column)}"
    return sql, fields, generated


@dataclass(frozen=True)
class RowUpdate:
    """An UPDATE of one row by primary key: `values` (field name -> value, exactly these) are set
    where every field in `where` also equals its value (None: IS NULL)."""

    model: type
    pk: Any
    values: dict[str, Any]
    where: dict[str, Any] = field(default_factory=dict)


def rows_write(*, guard: RowUpdate, inserts: Sequence = (), updates: Sequence[RowUpdate] = ()) -> bool:
    """Apply `guard` and, only if it matched its row, insert `inserts` and apply `updates`: all
    or nothing. Returns whether the guard matched.

    On PostgreSQL it is one statement of data-modifying CTEs: outside a transaction, one round
    trip and one durable commit, where the ORM would need BEGIN, a statement per row and COMMIT.
    Elsewhere the same writes run through the ORM, in a transaction. Like insert_row it sends no
    model signals."""
    if connection.vendor != "postgresql":
        return _rows_write_orm(guard, inserts, updates)
    sql, returned = _rows_write_sql(
        _update_shape(guard), tuple(type(i) for i in inserts), tuple(_update_shape(u) for u in updates)
    )
    params = _update_params(guard)
    for instance in inserts:
        fields = _insert_sql(type(instance))[1]
        params += [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    for update in updates:
        params += _update_params(update)
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        matched, *keys = cursor.fetchone()
    if not matched:
        return False
    for instance, generated, key in zip(inserts, returned, keys, strict=True):
        if generated is not None:
            setattr(instance, generated.attname, key)
        instance._state.adding = False
        instance._state.db = connection.alias
    return True


def _rows_write_orm(guard: RowUpdate, inserts: Sequence, updates: Sequence[RowUpdate]) -> bool:
    with transaction.atomic():
        if not _orm_update(guard):
            return False
        for instance in inserts:
            instance.save(force_insert=True)
        for update in updates:
            _orm_update(update)
    return True


def _orm_update(update: RowUpdate) -> int:
    return update.model._default_manager.filter(pk=update.pk, **update.where).update(**update.values)


def _update_shape(update: RowUpdate) -> tuple:
    """What the SQL of an update depends on (its values do not)."""
    return update.model, tuple(update.values), tuple((name, value is None) for name, value in update.where.items())


def _update_params(update: RowUpdate) -> list:
    meta = update.model._meta
    values = [meta.get_field(n).get_db_prep_save(v, connection) for n, v in update.values.items()]
    conditions = [meta.get_field(n).get_db_prep_save(v, connection) for n, v in update.where.items() if v is not None]
    return [*values, meta.pk.get_db_prep_save(update.pk, connection), *conditions]


def _update_statement(shape: tuple, *, guarded: bool) -> str:
    model, names, where = shape
    meta, quote = model._meta, connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(n).column)} = %s" for n in names)
    conditions = [f"{quote(meta.pk.column)} = %s"]
    for name, is_null in where:
        conditions.append(f"{quote(meta.get_field(name).column)} {'IS NULL' if is_null else '= %s'}")
    if guarded:
        conditions.append("EXISTS (SELECT 1 FROM guard)")
    # Built from the model's metadata; every value is a parameter.
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {' AND '.join(conditions)}"  # noqa: S608


@cache
def _rows_write_sql(guard: tuple, inserts: tuple, updates: tuple) -> tuple[str, tuple]:
    quote = connection.ops.quote_name
    ctes = [f"guard AS ({_update_statement(guard, guarded=False)} RETURNING 1)"]
    keys, returned = [], []
    for i, model in enumerate(inserts):
        # FROM guard: the row goes in only where the guard matched.
        insert, _, generated = _insert_sql(model, "guard")
        ctes.append(f"insert_{i} AS ({insert})")
        returned.append(generated)
        column = None if generated is None else quote(generated.column)
        keys.append("NULL" if column is None else f"(SELECT {column} FROM insert_{i})")  # noqa: S608
    for i, shape in enumerate(updates):
        ctes.append(f"update_{i} AS ({_update_statement(shape, guarded=True)})")
    selected = ", ".join(["EXISTS (SELECT 1 FROM guard)", *keys])
    return f"WITH {', '.join(ctes)} SELECT {selected}", tuple(returned)
