"""Domain errors. Services raise these; each edge maps them once (HTML, JSON problem, CLI line)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""


class ValidationError(DomainError):
    """Input is invalid. ``errors`` maps a field name to a message a person understands."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


class NotFound(DomainError):
    """The thing does not exist, or is outside the caller's scope (its existence is not revealed)."""


class Forbidden(DomainError):
    """The caller can see the thing but lacks the permission for this action."""


class Conflict(DomainError):
    """Someone else changed the thing since the caller read it (optimistic locking)."""
