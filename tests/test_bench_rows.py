"""The benchmarks load rows with COPY from complete rows: a column added to the schema must be
given a value there too, or every benchmark that loads data fails."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.support import JOB_COLUMNS, RUN_COLUMNS, job_row, run_row


def test_the_benchmarks_rows_have_every_column_of_the_schema():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert set(job_row("bench-1", now)) == set(JOB_COLUMNS)
    assert set(run_row("bench-1", now)) == set(RUN_COLUMNS)
