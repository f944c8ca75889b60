"""Mapped rows read and written by SQL sent straight to the driver (:func:`server.db.engine.driver_of`).

The ORM spends about half a millisecond of CPU on each statement it runs (building, compiling,
loading the objects, flushing them); the driver alone spends under a tenth of that. The hot paths
therefore write their statements once as SQL and use a :class:`Shape` to turn rows into the mapped
classes the rest of the code knows, and objects back into parameters (ADR 0015).

An object loaded by a shape is *not* in any session: it is what was read, nothing writes it back
but :meth:`Shape.update`. An object a shape has inserted or loaded can be handed to the session
(:func:`attach`), which then tracks it as if it had loaded it: later changes to it are written by
the session's flush, and :meth:`Shape.update` changes it as already written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, Boolean, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from server.db.engine import Driver

M = TypeVar("M")


# From how many instances an insert goes by COPY on PostgreSQL (:meth:`Shape.insert_many`).
COPY_ROWS = 100


class Shape(Generic[M]):
    """The columns of the mapped class ``model``: a select list under a table alias, rows turned into
    instances, and the INSERT of an instance (autoincremented keys left to the database)."""

    def __init__(self, model: type[M], alias: str) -> None:
        mapper = inspect(model)
        self.model = model
        self._manager = mapper.class_manager
        self.table = mapper.local_table.name
        self._attrs: list[tuple[str, str, bool, bool]] = []  # key, column, json, boolean
        written: list[tuple[str, str, Any]] = []
        for prop in mapper.column_attrs:
            (column,) = prop.columns
            kind = column.type
            is_json = isinstance(kind, JSON)
            self._attrs.append((prop.key, column.name, is_json, isinstance(kind, Boolean)))
            if not (column.primary_key and column.autoincrement is True) and column.computed is None:
                scalar = column.default is not None and column.default.is_scalar
                written.append((prop.key, column.name, column.default.arg if scalar else None))
        self.width = len(self._attrs)
        self.columns = ", ".join(f"{alias}.{name}" for _, name, _, _ in self._attrs)
        # The same with JSON columns cast to text, as either driver answers them: what a row carried
        # in a JSON array (``engine.Together``) is loaded from.
        self.portable_columns = ", ".join(
            f"CAST({alias}.{name} AS text)" if is_json else f"{alias}.{name}"
            for _, name, is_json, _ in self._attrs
        )
        # The same, unqualified: what an UPDATE's RETURNING may name on SQLite too.
        self.names = ", ".join(name for _, name, _, _ in self._attrs)
        self._written = written
        self._defaults = {key: default for key, _, default in written if default is not None}
        self._json = {key for key, _, is_json, _ in self._attrs if is_json}
        self._column = {key: name for key, name, _, _ in self._attrs}
        self._key = [prop.key for prop in mapper.column_attrs if prop.columns[0].primary_key]
        self._updates: dict[tuple[str, ...], str] = {}
        self._keys = tuple(key for key, _, _, _ in self._attrs)
        self._converted = tuple(
            (key, is_json) for key, _, is_json, is_bool in self._attrs if is_json or is_bool
        )
        self._written_columns = [name for _, name, _ in written]
        self._insert_into = f"INSERT INTO {self.table} ({', '.join(self._written_columns)})"
        self.insert_sql = f"{self._insert_into} VALUES ({', '.join(':' + key for key, _, _ in written)})"

    def load(self, values: tuple[Any, ...] | list[Any]) -> M:
        """An instance holding ``values``, read in the order of :attr:`columns`."""
        instance: Any = self._manager.new_instance()
        fields = instance.__dict__
        fields.update(zip(self._keys, values, strict=True))
        for key, is_json in self._converted:
            value = fields[key]
            if value is None:
                continue
            if is_json:  # text from either driver (asyncpg sends json and jsonb as text)
                fields[key] = json.loads(value) if isinstance(value, str) else value
            else:  # a boolean, an integer on SQLite
                fields[key] = bool(value)
        loaded: M = instance
        return loaded

    def new(self, **values: Any) -> M:
        """An instance of ``values`` (a column left out reads as its scalar default, as the row is
        written, else None), made without the ORM's attribute events, which cost about 15 times as
        much: for rows this shape writes."""
        assert values.keys() <= self._column.keys(), (
            f"not columns of {self.table}: {values.keys() - self._column.keys()}"
        )
        instance: Any = self._manager.new_instance()
        fields = instance.__dict__
        fields.update(self._defaults)
        fields.update(values)
        made: M = instance
        return made

    def _json_encoded(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the values of JSON columns as JSON text (None stays NULL)."""
        for key in self._json.intersection(params):
            if params[key] is not None:
                params[key] = json.dumps(params[key])
        return params

    def params(self, instance: M) -> dict[str, Any]:
        fields = vars(instance)
        return self._json_encoded({key: fields.get(key, default) for key, _, default in self._written})

    async def insert(self, driver: Driver, instance: M, *, later: bool = False) -> None:
        """``instance`` as a new row; ``later``: with the writes left for later (:meth:`Driver.later`)."""
        await (driver.later if later else driver.execute)(self.insert_sql, self.params(instance))

    async def insert_many(self, driver: Driver, instances: Iterable[M]) -> None:
        """Every instance, one statement each (PostgreSQL pipelines them), or on PostgreSQL from
        :data:`COPY_ROWS` instances on by ``COPY``: a third less of the database's time for a
        desk's 1,000 records (the rows' foreign keys and indexes are checked the same)."""
        rows = [self.params(instance) for instance in instances]
        if driver.sqlite or len(rows) < COPY_ROWS:
            await driver.execute_many(self.insert_sql, rows)
        else:  # a row's values are in the order of the written columns
            await driver.copy(self.table, self._written_columns, [tuple(row.values()) for row in rows])

    def _values(self, at: int, rows: int) -> str:
        """The INSERT of ``rows`` instances in one VALUES list, its parameters named ``w<at>_<row>_<key>``."""
        values = ", ".join(
            "(" + ", ".join(f":w{at}_{row}_{key}" for key, _, _ in self._written) + ")" for row in range(rows)
        )
        return f"{self._insert_into} VALUES {values}"

    def _update_sql(self, keys: tuple[str, ...]) -> str:
        sql = self._updates.get(keys)
        if sql is None:
            assigned = ", ".join(f"{self._column[key]} = :{key}" for key in keys)
            found = " AND ".join(f"{self._column[key]} = :key__{key}" for key in self._key)
            sql = self._updates[keys] = f"UPDATE {self.table} SET {assigned} WHERE {found}"  # noqa: S608 (constant names)
        return sql

    async def update(self, driver: Driver, instance: M, *, later: bool = False, **changes: Any) -> None:
        """Write ``changes`` to ``instance``'s row (found by its primary key) and to ``instance`` as
        already written: a session tracking it has nothing more to flush for them. ``later``: with
        the writes left for later (:meth:`Driver.later`)."""
        params = self._json_encoded(dict(changes))
        fields = vars(instance)
        params.update((f"key__{key}", fields[key]) for key in self._key)
        await (driver.later if later else driver.execute)(self._update_sql(tuple(changes)), params)
        for key, value in changes.items():
            set_committed_value(instance, key, value)


# The statements of insert_all, by their shapes and row counts; parameters one statement may take
# (PostgreSQL's limit is 32,767; a larger insert goes a batch a statement).
_TOGETHER: dict[tuple[tuple[int, int], ...], str] = {}
_TOGETHER_PARAMETERS = 5_000


async def insert_all(driver: Driver, *batches: tuple[Shape[Any], Sequence[Any]], later: bool = False) -> None:
    """Insert every batch's instances (None: nothing to insert), each batch by its shape: on
    PostgreSQL in one statement (one round trip: every INSERT but the last in a ``WITH``; foreign
    keys between them are checked at the statement's end), on SQLite one statement a batch (no
    round trip to save). ``later``: each batch with the writes left for later
    (:meth:`Driver.later`), where the driver defers them."""
    kept = ((shape, [row for row in rows if row is not None]) for shape, rows in batches)
    batches = tuple((shape, rows) for shape, rows in kept if rows)
    parameters = sum(len(shape._written) * len(rows) for shape, rows in batches)
    if later and driver.defers and parameters <= _TOGETHER_PARAMETERS:
        for shape, rows in batches:
            await driver.later(shape._values(0, len(rows)), _values_params(0, shape, rows))
        return
    if driver.sqlite or len(batches) < 2 or parameters > _TOGETHER_PARAMETERS:
        for shape, rows in batches:
            await shape.insert_many(driver, rows)
        return
    signature = tuple((id(shape), len(rows)) for shape, rows in batches)
    sql = _TOGETHER.get(signature)
    if sql is None:
        parts = [shape._values(at, len(rows)) for at, (shape, rows) in enumerate(batches)]
        heads = ", ".join(f"w{at} AS ({part})" for at, part in enumerate(parts[:-1]))
        sql = _TOGETHER[signature] = f"WITH {heads} {parts[-1]}"
    params: dict[str, Any] = {}
    for at, (shape, rows) in enumerate(batches):
        params.update(_values_params(at, shape, rows))
    await driver.execute(sql, params)


def _values_params(at: int, shape: Shape[Any], rows: Sequence[Any]) -> dict[str, Any]:
    """The parameters of ``rows``' VALUES list (:meth:`Shape._values`)."""
    return {
        f"w{at}_{row}_{key}": value
        for row, instance in enumerate(rows)
        for key, value in shape.params(instance).items()
    }


def attach(session: AsyncSession, instance: object) -> None:
    """Let ``session`` track ``instance``, which is already in the database (inserted by a
    :class:`Shape`): later changes to it are written by its flush, and nothing inserts it again."""
    make_transient_to_detached(instance)
    session.add(instance)
