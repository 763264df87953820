"""API tests share one app (building it costs more than most of them take)."""

import pytest


@pytest.fixture
def client(shared_app_client):
    return shared_app_client
