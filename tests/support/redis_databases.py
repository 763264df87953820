"""The suite's Redis databases: each belongs to one folder, which flushes it freely.

The benchmarks use others (9, 10 and 13, see ``bench/``), so a test run and a benchmark can share
one Redis server.
"""

#: tests/strategies: the async strategy's processes and schedule source.
STRATEGIES_REDIS = "redis://127.0.0.1:6379/5"
#: tests/reliability: the chaos runs.
CHAOS_REDIS = "redis://127.0.0.1:6379/11"
#: tests/reliability: the other async process tests (worker kills, lost sends, half-written state).
FAULTS_REDIS = "redis://127.0.0.1:6379/12"
