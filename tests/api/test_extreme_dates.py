"""Dates at the edges of what a datetime can hold: every date field and parameter refuses what
the scheduler cannot represent with a message next to the field (the accepted range is
1970-01-01 .. 9000-12-31 UTC), and a stored extreme value never fails a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.persistence.models import ScheduledJob
from tests.support.http import API, LIST, as_user, new_form, post_form, url

OWNER, ROOT = "owner@acme.test", "root@example.com"
YAML = {"Content-Type": "application/yaml"}
RANGE = "must be between 1970-01-01 and 9000-12-31 (UTC)"
KIRITIMATI = "Pacific/Kiritimati"  # UTC+14, the furthest east


def interval_job(**overrides) -> dict:
    return {
        "name": "Edge",
        "scopeType": "organization",
        "tenantId": "acme",
        "organizationId": "acme-eu",
        "scheduleType": "interval",
        "scheduleValue": "10s",
        "timezone": KIRITIMATI,
        "targetType": "command",
        "targetCommand": "demo.echo",
        **overrides,
    }


async def test_it_refuses_the_reported_start_at_the_end_of_time(client, bearer):
    response = await client.post(
        f"{API}/jobs", json=interval_job(startAt="9999-12-31T23:59:00Z"), headers=bearer(OWNER)
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"startAt": RANGE}


async def test_it_refuses_run_filters_it_cannot_represent(client, bearer, job):
    for name, value in (
        ("from", "0001-01-01T00:00:00+14:00"),
        ("to", "9999-12-31T23:59:59-12:00"),
        ("from", "1969-12-31T23:59:59Z"),
    ):
        response = await client.get(f"{API}/jobs/{job.id}/runs?{name}={quote(value)}", headers=bearer(OWNER))
        assert response.status_code == 422, (value, response.text)
        assert response.json()["errors"] == {name: RANGE}


async def test_the_form_preview_refuses_an_anchor_it_cannot_represent(client, app_runtime):
    await as_user(client, app_runtime, OWNER)
    response = await client.get(
        f"{LIST}/preview",
        params={
            "schedule_type": "interval",
            "schedule_value": "10s",
            "timezone": KIRITIMATI,
            "anchor": "9999-12-31T23:59:59",
        },
    )
    assert response.status_code == 200, response.text
    assert f"Anchor {RANGE}" in response.text


async def test_the_form_shows_the_range_next_to_the_date_field(client, app_runtime):
    await as_user(client, app_runtime, OWNER)
    response = await post_form(
        client,
        f"{LIST}/new",
        new_form(schedule_type="interval", schedule_value="10s", timezone=KIRITIMATI, end_at="9999-12-31T23:59"),
    )
    assert response.status_code == 422, response.text
    assert f'<p class="field-error" id="error-end_at">{RANGE}</p>' in response.text


async def test_an_import_refuses_dates_it_cannot_represent(client, bearer):
    body = yaml.safe_dump(
        {
            "version": 1,
            "schedules": [
                {"id": "edge", **interval_job(startAt="0001-01-01T00:00:00+14:00", endAt="9999-12-31T23:59:59")}
            ],
        }
    )
    response = await client.post(f"{API}/import", content=body, headers={**YAML, **bearer(OWNER)})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == {"schedules[0].startAt": RANGE, "schedules[0].endAt": RANGE}


async def test_a_stored_extreme_date_never_fails_a_page(client, app_runtime, bearer):
    """Rows written before the range existed (or by hand) still show, for their tenant and for
    superadmins, on the list, the detail page, the edit form and the API."""
    created = await client.post(f"{API}/jobs", json=interval_job(), headers=bearer(OWNER))
    job_id = created.json()["id"]
    edge = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    async with app_runtime.sessions.begin() as session:
        await session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id == job_id)
            .values(start_at=edge, end_at=edge, anchor_at=edge, next_run_at=edge, last_run_at=edge)
        )
    for email in (OWNER, ROOT):
        await as_user(client, app_runtime, email)
        for path in (LIST, url(job_id), url(job_id, "/edit")):
            page = await client.get(path)
            assert page.status_code == 200, (email, path, page.text[:300])
        assert "9999-12-31" in page.text
        assert (await client.get(f"{API}/jobs/{job_id}", headers=bearer(email))).status_code == 200


# ----- every input, driven with instants at the edges ----------------------------------------------

YEARS = st.sampled_from([1, 2, 1969, 1970, 2026, 9000, 9001, 9998, 9999])
OFFSETS = st.sampled_from(["Z", "+14:00", "-12:00", "+00:00", ""])
ZONES = st.sampled_from([KIRITIMATI, "Etc/GMT+12", "Etc/GMT-14", "UTC", "Pacific/Apia"])


@st.composite
def edge_instants(draw) -> str:
    """ISO 8601 text at or near the ends of datetime's range, with the widest offsets."""
    year = draw(YEARS)
    moment = datetime(year, 1, 1) if draw(st.booleans()) else datetime(year, 12, 31, 23, 59, 59)
    try:
        moment += timedelta(hours=draw(st.integers(-30, 30)))
    except OverflowError:
        pass  # already at the very end
    return moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + draw(OFFSETS)


def in_range(text: str, zone: str) -> bool:
    from zoneinfo import ZoneInfo

    from app.domain.instants import accepted_instant

    try:
        accepted_instant(datetime.fromisoformat(text), ZoneInfo(zone))
    except ValueError:
        return False
    return True


EDGES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EDGES
@given(start=edge_instants(), end=edge_instants(), zone=ZONES, since=edge_instants(), anchor=edge_instants())
async def test_no_date_anywhere_answers_500(client, app_runtime, bearer, job, start, end, zone, since, anchor):
    owner = bearer(OWNER)
    answers = []

    def answered(response, field: str | None = None, value: str = "", in_zone: str = "UTC"):
        assert response.status_code < 500, (response.request.url, response.text[:300])
        if field and not in_range(value, in_zone):
            assert response.status_code == 422, (field, value, response.text[:300])
            assert RANGE in response.text, (field, value, response.text[:300])
        answers.append(response.status_code)

    created = await client.post(f"{API}/jobs", json=interval_job(timezone=zone, startAt=start), headers=owner)
    answered(created, "startAt", start, zone)
    answered(
        await client.patch(f"{API}/jobs/{job.id}", json={"endAt": end, "timezone": zone}, headers=owner),
        "endAt",
        end,
        zone,
    )
    offset = since if len(since) > 19 else since + "Z"  # the run list needs an offset
    answered(await client.get(f"{API}/jobs/{job.id}/runs?from={quote(offset)}", headers=owner), "from", offset)
    answered(await client.get(f"{API}/jobs/{job.id}/runs?to={quote(offset)}", headers=owner), "to", offset)
    body = yaml.safe_dump(
        {"version": 1, "schedules": [{"id": "edge:import", **interval_job(timezone=zone, endAt=end)}]}
    )
    answered(await client.post(f"{API}/import", params={"dryRun": "true"}, content=body, headers={**YAML, **owner}))
    await as_user(client, app_runtime, OWNER)
    preview = await client.get(
        f"{LIST}/preview",
        params={
            "schedule_type": "interval",
            "schedule_value": "10s",
            "timezone": zone,
            "anchor": anchor,
            "start_at": start,
        },
    )
    answered(preview)
    if not in_range(start, zone):
        assert RANGE in preview.text
    answered(
        await post_form(
            client,
            f"{LIST}/new",
            new_form(
                schedule_type="interval", schedule_value="10s", timezone=zone, start_at=start[:19], end_at=end[:19]
            ),
        )
    )
    if created.status_code == 201:
        job_id = created.json()["id"]
        for path in (LIST, url(job_id), url(job_id, "/edit")):
            answered(await client.get(path))
