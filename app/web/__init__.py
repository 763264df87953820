"""The web edge: admin pages, JSON API and auth, on Litestar."""
