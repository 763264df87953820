"""How slots get fired: the local poller, or taskiq + Redis (async)."""
