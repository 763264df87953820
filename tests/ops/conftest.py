"""Ops fixtures: the API fixtures (app, client, personas, tokens)."""

from tests.api.conftest import *  # noqa: F403
