"""The OpenAPI document at /schema, and a schema-driven fuzz run against it (schemathesis).

Every documented operation gets generated requests, data that fits the schema and data that
does not, authenticated with a bearer token; each response must be documented (status, content
type, body schema) and none may be a 5xx. Bounded (a few examples per operation) so it stays fast.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.python import asgi as schemathesis_asgi

from app.web.app import create_app
from tests.support.http import API

MAX_EXAMPLES = 12
#: "Fits the schema, so must be accepted" does not hold here: a JSON schema cannot say that a cron
#: expression is valid or that an organization schedule needs its tenant. The domain answers such
#: requests with a documented 422, which every other check still verifies.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL, the production backend and the stricter one (it refuses NUL in text, for one)."""
    return pg_url


@pytest.fixture
async def seeded(app_runtime, tokens, job):
    run = await app_runtime.scheduler.trigger(job.id)
    return {"token": tokens["owner@acme.test"], "job_id": job.id, "run_id": run.id}


@pytest.fixture
def api_app(seeded, app_runtime):
    # The app makes its own runtime in its lifespan, inside the event loop thread schemathesis
    # runs ASGI apps in (a database pool cannot move between event loops).
    app = create_app(app_runtime.settings, run_scheduler=False)
    yield app
    schemathesis_asgi.shutdown_lifespans()


async def test_schema_lists_the_api_with_its_errors(client):
    document = (await client.get("/schema")).json()
    assert document["info"]["title"] == "Mercato Scheduler API"
    assert set(document["paths"]) == {
        f"{API}/jobs",
        f"{API}/jobs/{{job_id}}",
        f"{API}/jobs/{{job_id}}/enable",
        f"{API}/jobs/{{job_id}}/disable",
        f"{API}/jobs/{{job_id}}/trigger",
        f"{API}/jobs/{{job_id}}/runs",
        f"{API}/jobs/{{job_id}}/audit",
        f"{API}/jobs/{{job_id}}/undo",
        f"{API}/jobs/{{job_id}}/restore",
        f"{API}/trash",
        f"{API}/runs",
        f"{API}/runs/{{run_id}}",
        f"{API}/runs/{{run_id}}/cancel",
        f"{API}/runs/{{run_id}}/logs",
        f"{API}/targets",
        f"{API}/preview",
        f"{API}/export",
        f"{API}/import",
        f"{API}/processes",
        f"{API}/health",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "401" in responses, (method, path)
            problem = responses["401"]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
    patch = document["paths"][f"{API}/jobs/{{job_id}}"]["patch"]
    assert {"409", "412", "422"} <= set(patch["responses"])
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    assert document["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (msk_...).",
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_finds_no_server_error_and_no_undocumented_response(api_app, seeded, mode):
    schema = schemathesis.openapi.from_asgi("/schema", api_app)
    auth = {"Authorization": f"Bearer {seeded['token']}"}
    existing = {"job_id": seeded["job_id"], "run_id": seeded["run_id"]}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 23
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        # Random ids (mostly 404s) and the real schedule and run (the paths that do the work).
        for path_parameters in ({}, {k: v for k, v in existing.items() if k in names}) if names else ({},):
            strategy = operation.as_strategy(mode, path_parameters=path_parameters or None)

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case):
                response = case.call(headers=auth)
                case.validate_response(response, headers=auth, excluded_checks=EXCLUDED_CHECKS)

            exercise()
