"""The domain: schedules, runs, scopes, the targets registry, permissions and services."""
