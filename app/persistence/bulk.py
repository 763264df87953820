"""Batch statements on PostgreSQL: a whole batch bound as one array per column.

``UPDATE … FROM unnest(…)`` and ``INSERT … SELECT * FROM unnest(…)`` do in one statement what an
``executemany`` does row by row (a server round of work per row), and return what a row-by-row
``rowcount`` would tell.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine, to_instance

_PG = postgresql.dialect()


class Unnest:
    """``sql`` with ``{unnest}`` standing for ``unnest(CAST(:a AS <type of a>[]), …)`` over
    ``columns`` (name -> column type, in order), each bound as an array of that type.
    ``extra`` are further typed bind parameters the SQL uses."""

    def __init__(self, sql: str, columns: Mapping[str, Any], *extra: sa.BindParameter) -> None:
        self.columns: dict[str, TypeEngine] = {name: to_instance(kind) for name, kind in columns.items()}
        arrays = ", ".join(f"CAST(:{name} AS {kind.compile(dialect=_PG)}[])" for name, kind in self.columns.items())
        self.statement = sa.text(sql.format(unnest=f"unnest({arrays})")).bindparams(
            *(sa.bindparam(name, type_=postgresql.ARRAY(kind)) for name, kind in self.columns.items()), *extra
        )

    def params(self, rows: Iterable[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
        """The arrays for ``rows`` (mappings with every column's name), plus ``extra`` values."""
        rows = list(rows)
        return {**{name: [row[name] for row in rows] for name in self.columns}, **extra}
