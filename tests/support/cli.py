"""The ``mercato`` command line, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys


def mercato(*args: str, db_url: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``mercato <args>`` in a process of its own, on ``db_url`` when given; output captured as text."""
    environment = {**os.environ, **env}
    if db_url:
        environment["DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=environment, capture_output=True, text=True, timeout=60
    )
