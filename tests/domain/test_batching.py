"""Coalescing concurrent callers into batches (outcomes, worker starts)."""

from __future__ import annotations

import asyncio

import pytest

from app.domain.batching import Coalescer


async def test_callers_arriving_together_share_one_write_and_each_gets_its_own_result():
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    coalescer = Coalescer(write, limit=3)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(7)))
    assert results == [i * 10 for i in range(7)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_failed_write_fails_its_batch_only():
    calls = 0

    async def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return items

    coalescer = Coalescer(write, limit=2)
    first = [asyncio.create_task(coalescer.submit(x)) for x in ("a", "b", "c")]
    done = await asyncio.gather(*first, return_exceptions=True)
    assert [type(d) for d in done[:2]] == [RuntimeError, RuntimeError]
    assert done[2] == "c"
    assert await coalescer.submit("d") == "d"


async def test_a_write_that_returns_the_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    async def write(items: list[int]) -> list[int]:
        return items[:-1]

    with pytest.raises(ValueError):
        await Coalescer(write).submit(1)
