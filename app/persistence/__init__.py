"""Persistence: SQLAlchemy models, the database engine, and the queries the domain needs."""
