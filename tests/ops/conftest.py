"""Ops tests share one app, as the API tests do."""

import pytest


@pytest.fixture
def client(shared_app_client):
    return shared_app_client
