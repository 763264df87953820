"""What the tests share, one module per thing; the root conftest loads the ``fixtures_*`` modules.

- ``databases``: PostgreSQL databases of a run's own (the tests' and the benchmarks').
- ``clock``: ``utc(...)`` and a clock moved by hand.
- ``factories``: the one schedule factory, ``job_definition(*presets, **overrides)``.
- ``personas``: the users every access test signs in as, and their password.
- ``http``: URLs, CSRF tokens, sign-in, forms as a browser posts them.
- ``firing``: one poller round, every queued run, a schedule's runs.
- ``cli``: ``mercato(...)``, the command line as a real process.
- ``chaos``, ``chaos_targets``: scheduler fleets SIGKILLed on a timer, and a slot ledger
  (``tests/reliability`` and ``bench/chaos_kill.py``).
- ``redis_databases``: which Redis database each folder owns.
- ``fixtures_db``, ``fixtures_web``, ``fixtures_api``: the fixtures, for every folder.
"""
