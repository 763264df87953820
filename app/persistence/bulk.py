"""Batch statements: a whole batch of rows bound as a handful of parameters, on both backends.

``UPDATE … FROM <rows>`` and ``INSERT … SELECT * FROM <rows>`` do in one statement what an
``executemany`` does row by row (a round of work per row), and with ``RETURNING`` tell which rows
they touched, which a row-by-row ``rowcount`` would tell. The rows are, on PostgreSQL,
``unnest()`` over one array per column; on SQLite (no arrays), ``json_each()`` over one JSON
array of rows.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine, to_instance

#: A row of a batch: every column by name, or the values in column order.
Row = Mapping[str, Any] | tuple[Any, ...]

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # psycopg2 dialect's __init__ is unannotated
_SQLITE = sqlite.dialect()


class Unnest:
    """``sql`` with ``{rows}`` standing for the batch as a table named ``alias`` whose columns
    are ``columns`` (name -> column type, in order). ``extra`` are further typed bind parameters
    the SQL uses; the SQL is the same on both backends.

    On PostgreSQL ``{rows}`` is ``unnest(CAST(:a AS <type of a>[]), …) AS alias(a, …)``, each
    column bound as an array of its type. On SQLite it is ``(SELECT json_extract(value, '$[0]')
    AS a, … FROM json_each(:rows)) AS alias``, the rows bound as one JSON array of arrays, each
    value as the column type stores it on SQLite (a datetime as its text). A column of type
    ``sa.JSON`` is given as JSON text and is JSON in the rows (``jsonb`` on PostgreSQL, the text
    itself on SQLite, which stores JSON as text).

    ``json_rows``: on PostgreSQL too the rows are one JSON array of arrays
    (``json_array_elements``, each value cast to its column's type), for batches of many rows of
    text: asyncpg encodes an array element by element, with several ABC checks each, which cost
    twice the CPU of ``json.dumps`` (30,000 run log lines: 0.47 s against 0.22 s). No ``sa.JSON``
    columns then.
    """

    def __init__(
        self,
        sql: str,
        columns: Mapping[str, Any],
        *extra: sa.BindParameter[Any],
        alias: str = "v",
        json_rows: bool = False,
    ) -> None:
        self.sql = sql
        self.alias = alias
        self.columns: dict[str, TypeEngine[Any]] = {name: to_instance(kind) for name, kind in columns.items()}
        self.extra = extra
        self.json_rows = json_rows

    def statement(self, dialect: str) -> sa.TextClause:
        if dialect != "postgresql":
            return self._sqlite
        return self._postgresql_json if self.json_rows else self._postgresql

    def params(self, dialect: str, rows: Iterable[Row], **extra: Any) -> dict[str, Any]:
        """The bound values for ``rows``, plus ``extra`` values. A row is a mapping with every
        column's name, or a tuple of the values in column order (cheaper to make by the
        thousand)."""
        rows = list(rows)
        if dialect == "postgresql" and self.json_rows:
            return {"rows": json.dumps(self._postgresql_rows(rows)), **extra}
        if dialect == "postgresql":
            return {**{name: [row[key] for row in rows] for name, key in zip(self.columns, self._keys(rows))}, **extra}
        return {"rows": json.dumps(self._sqlite_rows(rows)), **extra}

    def _keys(self, rows: list[Row]) -> list[Any]:
        """How each column's value is taken from a row of ``rows``: its name, or its place."""
        return list(range(len(self.columns))) if rows and isinstance(rows[0], tuple) else list(self.columns)

    async def execute(self, session: AsyncSession, rows: Iterable[Row], **extra: Any) -> sa.Result[Any]:
        """The statement for ``rows`` in ``session``'s transaction, on its backend."""
        dialect = session.bind.dialect.name
        return await session.execute(self.statement(dialect), self.params(dialect, rows, **extra))

    @cached_property
    def _postgresql(self) -> sa.TextClause:
        arrays = []
        binds = []
        for name, kind in self.columns.items():
            if isinstance(kind, sa.JSON):
                arrays.append(f"CAST(CAST(:{name} AS TEXT[]) AS JSONB[])")
                kind = sa.Text()
            else:
                arrays.append(f"CAST(:{name} AS {kind.compile(dialect=_PG)}[])")
            binds.append(sa.bindparam(name, type_=postgresql.ARRAY(kind)))
        rows = f"unnest({', '.join(arrays)}) AS {self.alias}({', '.join(self.columns)})"
        return sa.text(self.sql.format(rows=rows)).bindparams(*binds, *self.extra)

    @cached_property
    def _postgresql_json(self) -> sa.TextClause:
        values = ", ".join(
            f"CAST(value->>{i} AS {kind.compile(dialect=_PG)}) AS {name}"
            for i, (name, kind) in enumerate(self.columns.items())
        )
        rows = f"(SELECT {values} FROM json_array_elements(CAST(:rows AS JSON)) AS value) AS {self.alias}"
        return sa.text(self.sql.format(rows=rows)).bindparams(sa.bindparam("rows", type_=sa.Text), *self.extra)

    def _postgresql_rows(self, rows: list[Row]) -> list[list[Any]]:
        """Each row's values in column order, instants as ISO 8601 text (PostgreSQL parses it)."""
        keys = self._keys(rows)
        values_of = operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
        instants = [i for i, name in enumerate(self.columns) if name in self._instants]
        out = []
        for row in rows:
            values = list(values_of(row))
            for i in instants:
                if values[i] is not None:
                    values[i] = values[i].isoformat()
            out.append(values)
        return out

    @cached_property
    def _instants(self) -> frozenset[str]:
        """The columns of date and time types (a ``TypeDecorator`` of one too)."""
        return frozenset(
            name
            for name, kind in self.columns.items()
            if isinstance(kind, sa.DateTime) or isinstance(getattr(kind, "impl", None), sa.DateTime)
        )

    @cached_property
    def _sqlite(self) -> sa.TextClause:
        values = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(self.columns))
        rows = f"(SELECT {values} FROM json_each(:rows)) AS {self.alias}"
        return sa.text(self.sql.format(rows=rows)).bindparams(sa.bindparam("rows", type_=sa.Text), *self.extra)

    def _sqlite_rows(self, rows: list[Row]) -> list[list[Any]]:
        """Each row's values in column order, as SQLite stores them. A value that needs converting
        (a datetime) is converted once per batch: a burst's rows share a few instants."""
        columns: list[tuple[Any, Any, dict[Any, Any]]] = [
            (key, convert, {}) for key, (_name, convert) in zip(self._keys(rows), self._sqlite_converters)
        ]
        out = []
        for row in rows:
            values = []
            for key, convert, converted in columns:
                value = row[key]
                if convert is not None and value is not None:
                    stored = converted.get(value)
                    if stored is None:
                        stored = converted[value] = convert(value)
                    value = stored
                values.append(value)
            out.append(values)
        return out

    @cached_property
    def _sqlite_converters(self) -> list[tuple[str, Any]]:
        """Each column's name and how SQLite stores its values (None: as they are)."""
        return [
            (name, None if isinstance(kind, sa.JSON) else kind.dialect_impl(_SQLITE).bind_processor(_SQLITE))
            for name, kind in self.columns.items()
        ]
