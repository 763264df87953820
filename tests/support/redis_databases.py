"""The suite's Redis databases: each belongs to one folder, which flushes it freely.

The benchmarks use others (9, 10 and 13, see ``bench/``), so a test run and a benchmark can share
one Redis server. Two test runs on one Redis server (two checkouts on one machine) choose other
databases with ``MERCATO_TEST_REDIS_DBS`` (three numbers: strategies, chaos, faults).
"""

import os

_STRATEGIES, _CHAOS, _FAULTS = (int(n) for n in os.environ.get("MERCATO_TEST_REDIS_DBS", "5,11,12").split(","))

#: tests/strategies: the async strategy's processes and schedule source.
STRATEGIES_REDIS = f"redis://127.0.0.1:6379/{_STRATEGIES}"
#: tests/reliability: the chaos runs.
CHAOS_REDIS = f"redis://127.0.0.1:6379/{_CHAOS}"
#: tests/reliability: the other async process tests (worker kills, lost sends, half-written state).
FAULTS_REDIS = f"redis://127.0.0.1:6379/{_FAULTS}"
