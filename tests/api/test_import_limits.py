"""An import file is hostile input: who may send one is checked before it is read, its size is
capped while it is read, its values are counted before they are built, and parsing it never
stops the server from answering."""

from __future__ import annotations

import asyncio
import time

import yaml

from tests.support.http import API

OWNER, VIEWER = "owner@acme.test", "viewer@acme.test"
YAML = {"Content-Type": "application/yaml"}
LIMIT = 2 * 1024 * 1024  # the default SCHEDULER_MAX_IMPORT_BYTES


def list_of_items(size: int) -> bytes:
    """A file of about ``size`` bytes: one long list of tiny items, the cheapest way to make many values."""
    return b"version: 1\nschedules:\n" + b"- 1\n" * (size // 4)


def schedules(count: int) -> bytes:
    items = [
        {
            "id": f"rates:{i}",
            "name": f"Rates {i}",
            "scopeType": "organization",
            "tenantId": "acme",
            "organizationId": "acme-eu",
            "scheduleValue": "0 * * * *",
            "timezone": "Europe/Warsaw",
            "targetType": "queue",
            "targetQueue": "currency-rates",
            "targetPayload": {"base": "EUR", "n": i},
            "catchUpPolicy": "latest",
            "overlapPolicy": "allow",
            "jitterSeconds": 0,
            "maxRetries": 0,
        }
        for i in range(count)
    ]
    return yaml.safe_dump({"version": 1, "schedules": items}, sort_keys=False).encode()


async def test_it_refuses_a_view_only_user_before_reading_the_file(client, bearer):
    for body in (list_of_items(LIMIT + 1024), b"schedules: [unclosed"):
        response = await client.post(f"{API}/import", content=body, headers={**YAML, **bearer(VIEWER)})
        # 403, not 413 or 422: the file was neither read nor parsed.
        assert response.status_code == 403, response.text
        assert "scheduler.jobs.manage" in response.json()["detail"]


async def test_it_answers_413_naming_the_limit_for_a_file_over_it(client, bearer):
    response = await client.post(
        f"{API}/import", content=list_of_items(LIMIT + 1024), headers={**YAML, **bearer(OWNER)}
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "the file is larger than the import limit of 2 MiB"


async def test_it_stops_reading_a_body_without_a_length_once_it_passes_the_limit(client, bearer):
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(64):  # 4 MiB offered, in 64 KiB chunks
            sent += 1
            yield b"- 1\n" * 16384

    response = await client.post(f"{API}/import", content=chunks(), headers={**YAML, **bearer(OWNER)})
    assert response.status_code == 413, response.text
    assert sent <= 34  # 2 MiB and a chunk: the rest was never asked for


async def test_it_refuses_too_many_values_or_schedules_naming_the_limit(client, bearer):
    owner = {**YAML, **bearer(OWNER)}
    values = await client.post(f"{API}/import", content=list_of_items(1_600_000), headers=owner)
    assert values.status_code == 422, values.text
    assert values.json()["errors"]["file"] == "the file holds more than 300,000 values (the limit)"
    many = b"version: 1\nschedules:\n" + b"- {}\n" * 5001
    response = await client.post(f"{API}/import", content=many, headers=owner)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]["schedules"] == "at most 5,000 schedules per file (got 5,001)"


async def test_it_keeps_answering_healthz_while_a_large_file_is_imported(client, bearer):
    body = schedules(5000)  # the most schedules a file may hold, every one valid
    assert 1_500_000 < len(body) < LIMIT
    started = time.perf_counter()
    importing = asyncio.create_task(
        client.post(f"{API}/import", params={"dryRun": "true"}, content=body, headers={**YAML, **bearer(OWNER)})
    )
    await asyncio.sleep(0)  # let the import start first
    # A probe every 50 ms, in the server's own event loop (the in-process client shares it):
    # the time between two answers is how long the loop could not answer.
    waits, last = [], time.perf_counter()
    while not importing.done():
        assert (await client.get("/healthz")).status_code == 200
        now = time.perf_counter()
        waits.append(now - last)
        last = now
        await asyncio.sleep(0.05)
    response = await importing
    assert response.status_code == 200, response.text[:500]
    assert response.json()["created"] == 5000
    took = time.perf_counter() - started
    # Parsed on the event loop, the file held every other request for seconds.
    assert len(waits) > 3 and max(waits) < 1.0, f"healthz waited up to {max(waits):.2f} s (import {took:.1f} s)"
