"""Field names as machines see them: camelCase in the JSON API and in import/export files.

The domain speaks snake_case (``schedule_value``); the original product's API and files speak
camelCase (``scheduleValue``). These two functions are the only translation between them.
"""

from __future__ import annotations

import re

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return _UPPER.sub("_", name).lower()


def camel_keys(errors: dict[str, str]) -> dict[str, str]:
    """Error messages keyed by camelCase field names (``schedules[2].schedule_value`` too)."""
    out: dict[str, str] = {}
    for key, message in errors.items():
        prefix, dot, last = key.rpartition(".")
        out[f"{prefix}{dot}{camel(last)}"] = message
    return out
