"""Mercato Scheduler: database-managed scheduled jobs with an admin web UI."""
