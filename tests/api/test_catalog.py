"""Targets a schedule may run, and previews of what a schedule means."""

from __future__ import annotations

import pytest

from tests.support.http import API


@pytest.fixture
def db_url(sqlite_url):
    return sqlite_url


@pytest.fixture
def viewer(client, bearer):
    client.headers.update(bearer("viewer@acme.test"))
    return client


async def test_targets_are_the_schedulable_queues_and_commands(viewer):
    items = (await viewer.get(f"{API}/targets")).json()["items"]
    by_name = {(t["type"], t["name"]): t for t in items}
    rates = by_name[("queue", "currency-rates")]
    assert rates["label"] == "Fetch currency rates" and rates["payloadHint"] == {
        "base": "EUR",
        "symbols": ["USD", "GBP"],
    }
    assert ("command", "demo.echo") in by_name


async def test_preview_describes_and_lists_slots_in_the_schedules_zone(viewer):
    response = await viewer.get(
        f"{API}/preview", params={"scheduleValue": "0 9 * * 1-5", "timezone": "Europe/Warsaw", "count": 3}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "At 09:00, Monday through Friday"
    # The clock says Monday 2026-06-01 12:00 UTC (14:00 in Warsaw): Tuesday is next.
    assert body["slots"] == ["2026-06-02T09:00:00+02:00", "2026-06-03T09:00:00+02:00", "2026-06-04T09:00:00+02:00"]


async def test_preview_of_an_interval(viewer):
    body = (await viewer.get(f"{API}/preview", params={"scheduleType": "interval", "scheduleValue": "1h30m"})).json()
    assert len(body["slots"]) == 5 and body["scheduleType"] == "interval"


@pytest.mark.parametrize(
    "params,named",
    [
        ({"scheduleValue": "0 9 * * 8"}, "scheduleValue"),
        ({"scheduleValue": "0 9 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"scheduleType": "interval", "scheduleValue": "1s"}, "scheduleValue"),  # below the minimum interval
        ({"scheduleType": "monthly", "scheduleValue": "0 9 * * *"}, "scheduleType"),
        ({"scheduleValue": "0 9 * * *", "count": 0}, "count"),
        ({}, "scheduleValue"),
    ],
)
async def test_preview_names_what_is_wrong(viewer, params, named):
    response = await viewer.get(f"{API}/preview", params=params)
    assert response.status_code == 422, response.text
    assert named in response.json()["errors"]
