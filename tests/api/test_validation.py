"""Every invalid field answers 422 naming that field in camelCase; malformed bodies answer 400;
too-large bodies 413; nothing answers 500."""

from __future__ import annotations

import pytest

from tests.support.http import API

VALID = {
    "name": "Hourly rates",
    "scheduleValue": "0 * * * *",
    "scopeType": "organization",
    "tenantId": "acme",
    "organizationId": "acme-eu",
    "targetType": "queue",
    "targetQueue": "currency-rates",
}


@pytest.fixture
def db_url(sqlite_url):
    """Validation does not depend on the backend: SQLite only, to keep the suite quick."""
    return sqlite_url


@pytest.fixture
def owner(client, bearer):
    client.headers.update(bearer("owner@acme.test"))
    return client


# (field sent, value, field named in the error, a phrase of the message)
CASES = [
    ("id", "has spaces!", "id", "1-200 characters"),
    ("name", "", "name", "required"),
    ("name", "x" * 201, "name", "at most 200"),
    ("name", 42, "name", "Expected str"),
    ("description", "x" * 2001, "description", "at most 2000"),
    ("scopeType", "galaxy", "scopeType", "Invalid enum value"),
    ("tenantId", None, "tenantId", "needs a tenant"),
    ("organizationId", None, "organizationId", "needs an organization"),
    ("scheduleType", "weekly", "scheduleType", "Invalid enum value"),
    ("scheduleValue", "61 * * * *", "scheduleValue", "minute"),
    ("scheduleValue", "", "scheduleValue", "required"),
    ("timezone", "Mars/Olympus_Mons", "timezone", "timezone"),
    ("targetType", "webhook", "targetType", "Invalid enum value"),
    ("targetQueue", "no-such-queue", "targetQueue", "unknown queue"),
    ("targetPayload", [1, 2], "targetPayload", "Expected object"),
    ("targetPayload", {"blob": "x" * 70_000}, "targetPayload", "limit"),
    ("requireFeature", "x" * 201, "requireFeature", "at most 200"),
    ("isEnabled", "maybe", "isEnabled", "Expected bool"),
    ("catchUpPolicy", "sometimes", "catchUpPolicy", "Invalid enum value"),
    ("catchUpWindowSeconds", 0, "catchUpWindowSeconds", "between 1 and"),
    ("overlapPolicy", "queue", "overlapPolicy", "Invalid enum value"),
    ("jitterSeconds", -1, "jitterSeconds", "between 0 and 3600"),
    ("jitterSeconds", 1.5, "jitterSeconds", "Expected int"),
    ("timeoutSeconds", 0, "timeoutSeconds", "between 1 and"),
    ("maxRetries", 11, "maxRetries", "between 0 and 10"),
    ("retryBackoffSeconds", 0, "retryBackoffSeconds", "between 1 and"),
    ("startAt", "yesterday", "startAt", "Invalid RFC3339"),
    ("maxRuns", 0, "maxRuns", "between 1 and"),
    ("sourceType", "robot", "sourceType", "Invalid enum value"),
    ("sourceModule", "x" * 101, "sourceModule", "at most 100"),
    ("colour", "blue", "colour", "unknown field"),
]


@pytest.mark.parametrize("field,value,named,phrase", CASES, ids=[f"{c[0]}={str(c[1])[:20]}" for c in CASES])
async def test_each_invalid_field_is_named_in_a_422(owner, field, value, named, phrase):
    response = await owner.post(f"{API}/jobs", json={**VALID, field: value})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Invalid input"
    assert named in problem["errors"], problem
    assert phrase in problem["errors"][named], problem


async def test_a_command_target_must_exist_and_an_end_must_follow_the_start(owner):
    response = await owner.post(
        f"{API}/jobs",
        json={
            **VALID,
            "targetType": "command",
            "targetCommand": "no.such.command",
            "startAt": "2026-07-01T00:00:00Z",
            "endAt": "2026-06-01T00:00:00Z",
        },
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert "unknown command" in errors["targetCommand"]
    assert "after start" in errors["endAt"]


async def test_every_bad_field_is_reported_at_once(owner):
    response = await owner.post(
        f"{API}/jobs", json={**VALID, "scheduleValue": "* * *", "maxRetries": 99, "jitterSeconds": 9999, "name": ""}
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"scheduleValue", "maxRetries", "jitterSeconds", "name"}


async def test_missing_required_fields(owner):
    response = await owner.post(f"{API}/jobs", json={"scheduleValue": "0 * * * *"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"name": "is required"}


async def test_patch_validates_the_same_way(owner, job):
    response = await owner.patch(f"{API}/jobs/{job.id}", json={"scheduleValue": "0 25 * * *", "maxRetries": -1})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"scheduleValue", "maxRetries"}
    scope = await owner.patch(f"{API}/jobs/{job.id}", json={"scopeType": "tenant"})
    assert scope.status_code == 422 and "cannot change" in scope.json()["errors"]["scopeType"]


@pytest.mark.parametrize(
    "content,status",
    [(b"{not json", 400), (b"[1, 2]", 400), (b'"text"', 400), (b"", 400), (b"null", 400)],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(owner, content, status):
    response = await owner.post(f"{API}/jobs", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_over_the_limit_is_a_413(owner):
    response = await owner.post(
        f"{API}/jobs",
        content=b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params,named",
    [
        ({"pageSize": 101}, "pageSize"),
        ({"page": 0}, "page"),
        ({"sort": "colour"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"scopeType": "galaxy"}, "scopeType"),
        ({"isEnabled": "perhaps"}, "isEnabled"),
        ({"lastStatus": "happy"}, "lastStatus"),
    ],
)
async def test_bad_query_parameters_are_named_as_sent(owner, params, named):
    response = await owner.get(f"{API}/jobs", params=params)
    assert response.status_code == 422, response.text
    assert named in response.json()["errors"]


async def test_a_query_parameter_given_twice_is_named(owner):
    response = await owner.get(f"{API}/runs?jobId=a&jobId=b&status=failed")
    assert response.status_code == 422
    assert response.json()["errors"] == {"jobId": "give this parameter once"}
