"""Property tests of every parser and validator outside the schedule engine (whose own are in
``tests/engine/test_properties.py``): whatever comes in, the answer is a valid result or the
validation error of that layer, never another exception.

Layers: ``clean_job`` (every path's validation), schedule ids, the settings loader, the import
file parser, the admin form, the form's live preview, the flash cookie, the API's ``If-Match``,
and the ``mercato`` command line.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from litestar.exceptions import ClientException

import app.targets  # noqa: F401  (the built-in targets a definition may name)
from app import engine
from app.domain.actors import ALL_FEATURES, Actor
from app.domain.errors import ValidationError
from app.domain.registry import registry
from app.domain.transfer import parse_schedules
from app.domain.validation import DEFAULTS, FIELDS, clean_job, validate_job_id
from app.settings import Settings, SettingsError, load_settings
from app.web.api.jobs import expected_version
from app.web.formatting import schedule_preview
from app.web.forms import TEXT_FIELDS, JobForm
from app.web.pages import flash

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SETTINGS = load_settings({})
UTC = UTC

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "<script>alert(1)</script>",
            "'; DROP TABLE scheduled_jobs; --",
            "%s%s%n",
            "../../etc/passwd",
            "🙂" * 50,
            "a" * 5000,
            "1e309",
            "NaN",
            "-0",
            "0x10",
            "true",
            "null",
            "{}",
            "[]",
            "2026-02-30T25:61:00",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-12:00",
            "@reboot",
            "* * * * * * *",
            "*/0 * * * *",
            "0 0 31 2 *",
            "1h 30m",
            "30s",
            "0s",
            "Europe/Nowhere",
            "UTC\n",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
    st.binary(max_size=10),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
VALID = {
    "name": "Nightly",
    "scope_type": "tenant",
    "tenant_id": "acme",
    "schedule_type": "cron",
    "schedule_value": "0 2 * * *",
    "timezone": "Europe/Berlin",
    "target_type": "command",
    "target_command": "demo.echo",
    "target_payload": {"message": "hi"},
}


def clean_or_validation_error(raw):
    try:
        return clean_job(raw, base=dict(DEFAULTS), registry=registry, settings=SETTINGS)
    except ValidationError as exc:
        assert exc.errors and all(isinstance(k, str) and isinstance(v, str) and v for k, v in exc.errors.items())
        return None


def assert_clean(clean: dict) -> None:
    """What ``clean_job`` lets through is what the rest of the product relies on."""
    assert set(clean) == set(FIELDS)
    engine.parse_schedule(
        clean["schedule_type"],
        clean["schedule_value"],
        clean["timezone"],
        start_at=clean["start_at"],
        end_at=clean["end_at"],
        min_interval_seconds=SETTINGS.scheduler_min_interval_seconds,
    )
    encoded = json.dumps(clean["target_payload"], allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert len(encoded) <= SETTINGS.scheduler_max_payload_bytes
    assert "\x00" not in encoded.decode()
    for key in ("start_at", "end_at"):
        assert clean[key] is None or clean[key].tzinfo is not None
    target = registry.get(clean["target_type"], clean["target_queue"] or clean["target_command"])
    assert target is not None and target.schedulable
    # Cleaning clean values changes nothing: an edit that changes nothing stays a no-op.
    assert clean_job(clean, base=dict(DEFAULTS), registry=registry, settings=SETTINGS) == clean


@FAST
@given(raw=st.dictionaries(st.one_of(st.sampled_from(FIELDS), hostile_text), json_like, max_size=12))
def test_clean_job_with_any_dict_gives_clean_values_or_a_validation_error(raw):
    clean = clean_or_validation_error(raw)
    if clean is not None:
        assert_clean(clean)


@settings(max_examples=400, deadline=None, database=None)
@given(field=st.sampled_from(FIELDS), value=json_like)
def test_clean_job_with_one_hostile_field_in_a_valid_definition(field, value):
    clean = clean_or_validation_error({**VALID, field: value})
    if clean is not None:
        assert_clean(clean)


@FAST
@given(value=json_like)
@example(value="0\n")  # `$` matches before a final newline
def test_a_schedule_id_is_accepted_or_refused_with_a_message(value):
    try:
        assert validate_job_id(value) == value
    except ValidationError as exc:
        assert set(exc.errors) == {"id"}
    else:
        assert "/" not in value and len(value) <= 200 and value.isprintable()


# ----- settings ---------------------------------------------------------------------------------

VARIABLES = [
    "DATABASE_URL",
    "QUEUE_STRATEGY",
    "SCHEDULER_POLL_INTERVAL_MS",
    "REDIS_URL",
    "QUEUE_REDIS_URL",
    "SECRET_KEY",
    "MERCATO_ENV",
    "SCHEDULER_HISTORY_RETENTION_DAYS",
    "SCHEDULER_MIN_INTERVAL_SECONDS",
    "SCHEDULER_MAX_PAYLOAD_BYTES",
    "SCHEDULER_EMBEDDED",
    "SCHEDULER_CLAIM_BATCH_SIZE",
    "SCHEDULER_CONCURRENCY",
    "DATABASE_POOL_SIZE",
    "SCHEDULER_RECONCILE_INTERVAL_SECONDS",
    "WORKER_REDELIVERY_SECONDS",
]
env_values = st.one_of(
    hostile_text,
    st.integers(-10, 10**8).map(str),
    st.sampled_from(
        ["postgres://u@h/db", "redis://x", "sqlite+aiosqlite:///x", "production", "development", "async", "true", "off"]
    ),
)


@settings(max_examples=300, deadline=None, database=None)
@given(env=st.dictionaries(st.sampled_from(VARIABLES), env_values))
def test_the_settings_loader_gives_settings_or_a_message_naming_the_variable(env):
    try:
        loaded = load_settings(env)
    except SettingsError as exc:
        assert any(name in str(exc) for name in VARIABLES), str(exc)
        return
    assert isinstance(loaded, Settings)
    if loaded.environment == "production":
        assert loaded.secret_key != "dev-only-insecure-secret-key-change-me" and len(loaded.secret_key) >= 32


@FAST
@given(env=st.dictionaries(st.sampled_from(VARIABLES), env_values))
def test_production_never_starts_without_a_secret_key(env):
    env = {**env, "MERCATO_ENV": "production"}
    env.pop("SECRET_KEY", None)
    with pytest.raises(SettingsError):
        load_settings(env)


# ----- import files ------------------------------------------------------------------------------

yaml_docs = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    json_like.map(lambda v: json.dumps({"version": 1, "schedules": v}, default=str)),
    st.lists(
        st.dictionaries(
            st.sampled_from(["id", "name", "scheduleValue", "targetPayload", "bogus"]), json_like, max_size=4
        ),
        max_size=4,
    ).map(lambda v: json.dumps({"schedules": v}, default=str)),
    st.sampled_from(
        [
            "a: &x [*x]",
            "a: !!python/object:os.system ls",
            "schedules: [" * 2000,
            "\ufeffschedules: []",
            "schedules:\n  - {id: x, id: y}",
            b"\xff\xfe\x00",
            "version: 2\nschedules: []",
        ]
    ),
)


@FAST
@given(text=yaml_docs)
def test_an_import_file_parses_or_is_refused_with_a_validation_error(text):
    try:
        items = parse_schedules(text)
    except ValidationError as exc:
        assert exc.errors
        return
    assert isinstance(items, list) and all(isinstance(i, dict) and set(i) <= {"id", *FIELDS} for i in items)
    for item in items:
        clean_or_validation_error(item)


# ----- the admin form and its preview -------------------------------------------------------------

ACTORS = [
    Actor("1", "root", features=ALL_FEATURES, is_superadmin=True),
    Actor("2", "owner", tenant_id="acme", organization_id="acme-eu", features=ALL_FEATURES),
    Actor("3", "tenant admin", tenant_id="acme", features=ALL_FEATURES),
]


@FAST
@given(
    form=st.dictionaries(st.sampled_from([*TEXT_FIELDS, "version", "is_enabled", "_csrf"]), hostile_text),
    actor=st.sampled_from(ACTORS),
    creating=st.booleans(),
)
def test_any_form_submission_becomes_service_input_or_a_validation_error(form, actor, creating):
    submitted = JobForm.from_submission(form)
    changes = submitted.changes(actor, creating=creating)
    try:
        clean_job(changes, base=dict(DEFAULTS), registry=registry, settings=SETTINGS)
    except ValidationError as exc:
        rendered = submitted.with_errors(exc.errors)
        assert rendered.errors or rendered.general


@FAST
@given(kind=hostile_text, value=hostile_text, zone=hostile_text, start=hostile_text, end=hostile_text)
def test_the_live_preview_describes_or_reports_an_error_for_anything_typed(kind, value, zone, start, end):
    shown = schedule_preview(kind, value, zone, now=datetime(2026, 6, 1, tzinfo=UTC), start_at=start, end_at=end)
    assert shown.error is None or shown.error_field


# ----- cookies and headers an attacker controls ----------------------------------------------------


def _request_with_cookie(value: str):
    return SimpleNamespace(cookies={flash.COOKIE: value}, app=SimpleNamespace(state=SimpleNamespace(settings=SETTINGS)))


# What a Cookie header can deliver: Litestar decodes headers as latin-1 and percent-decodes
# cookie values with replacement, so no lone surrogates.
cookie_text = hostile_text.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))


@FAST
@given(value=st.one_of(cookie_text, st.builds(lambda a, b: f"{a}.{b}", cookie_text, cookie_text)))
def test_a_forged_flash_cookie_shows_nothing(value):
    assert flash._decode(_request_with_cookie(value)) == []


@FAST
@given(items=json_like)
def test_a_validly_signed_flash_cookie_of_any_shape_never_breaks_a_page(items):
    payload = base64.urlsafe_b64encode(json.dumps(items, default=str).encode()).decode()
    signed = f"{payload}.{flash._sign(SETTINGS.secret_key, payload)}"
    shown = flash._decode(_request_with_cookie(signed))
    assert all(isinstance(m.text, str) and isinstance(m.kind, str) for m in shown)


@FAST
@given(
    header=st.one_of(hostile_text, st.integers().map(lambda n: f'"{n}"')),
    body=st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_if_match_is_one_version_or_a_clear_400(header, body):
    try:
        version = expected_version(header, body)
    except ClientException as exc:
        assert exc.status_code == 400 and exc.detail
    else:
        assert version is None or (isinstance(version, int) and version >= 0)


# ----- the command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    from app.cli.main import cli as mercato

    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cli')}/never-used.sqlite3",
        "LOG_FORMAT": "text",
    }
    return lambda *args: CliRunner().invoke(mercato, list(args), env=env, catch_exceptions=True)


cli_text = hostile_text.filter(lambda s: "\x00" not in s)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    value=cli_text,
    kind=st.sampled_from(["cron", "interval", "daily", ""]),
    zone=cli_text,
    after=cli_text,
    count=st.one_of(st.integers(-5, 200).map(str), cli_text),
)
def test_mercato_scheduler_preview_answers_or_exits_with_a_one_line_message(cli, value, kind, zone, after, count):
    args = ["scheduler", "preview", "--tz", zone, "--after", after, "--count", count]
    if kind:
        args += ["--type", kind]
    result = cli(*args, "--", value)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert "Error" in result.output


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    args=st.lists(cli_text, max_size=4),
    group=st.sampled_from(
        [
            ["scheduler", "list", "--scope"],
            ["scheduler", "list", "--enabled"],
            ["scheduler", "cleanup", "--days"],
            ["users", "create", "--role"],
            ["worker", "start", "--workers"],
            ["--log-level"],
            ["scheduler", "nope"],
        ]
    ),
)
def test_mercato_refuses_bad_arguments_before_touching_anything(cli, args, group):
    assume(
        not (
            group[-1] in ("--scope", "--enabled", "--days", "--role", "--workers", "--log-level")
            and args
            and args[0]
            in (
                "system",
                "tenant",
                "organization",
                "true",
                "false",
                "admin",
                "operator",
                "employee",
                "debug",
                "info",
                "warning",
                "error",
            )
            + tuple(map(str, range(1, 4000)))
        )
    )
    result = cli(*group, *args)
    assert result.exit_code == 2, (group, args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
