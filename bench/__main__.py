"""``make bench``: every benchmark, one after another, each printing its table.

    python -m bench --size small            # a few minutes (make bench)
    python -m bench --size full             # the sizes of the scale issue (make bench SIZE=full)
    python -m bench --only bursts,list_page # some of them

Each benchmark runs in a process of its own (``python -m bench.<name> --size ...``): its own
event loop and memory, and one that fails does not stop the others. They run one at a time,
since they share the machine's two cores with PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: (module, extra arguments per size): in the order they run.
BENCHMARKS: list[tuple[str, dict[str, list[str]]]] = [
    ("local_firing", {}),
    ("bursts", {}),
    # What capturing run logs costs in the 10,000 burst: a target logging 3 lines per run
    # against the same target logging none (bench/run_logs.py).
    ("run_logs", {}),
    ("million", {}),
    ("list_page", {}),
    ("runs_page", {}),
    ("cleanup", {}),
    ("registration", {}),
    # The async strategy beside stock taskiq (bench/async_firing.py): real processes and Redis,
    # about two minutes for our side alone, four with stock taskiq; so only at the full size,
    # or on demand (python -m bench --only async_firing).
    ("async_firing", {}),
    # Schedulers SIGKILLed every 3 s while schedules fire every second, both strategies
    # (bench/chaos_kill.py): 200 a second for 20 s at the small size, 500 for 60 s at full.
    ("chaos_kill", {}),
    # mercato serve under hostile load: the largest import, view-only uploads of 4 MB, 40 logins
    # at once; /healthz and the firing lag of every-second schedules against a quiet baseline.
    ("hostile_load", {}),
]
#: Left out of a size unless asked for with --only.
ONLY_WHEN_ASKED = {"small": {"async_firing"}, "full": set()}


def _machine() -> str:
    cores = os.cpu_count()
    memory = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cores} cores, {memory / 1024 / 1024:.0f} GiB, load average {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["small", "full"], default="small")
    parser.add_argument("--only", default="", help="Comma-separated benchmark names (default: all).")
    parser.add_argument("--skip", default="", help="Comma-separated benchmark names to leave out.")
    args = parser.parse_args()
    names = [name for name, _ in BENCHMARKS]
    only = [n for n in args.only.split(",") if n]
    skip = [n for n in args.skip.split(",") if n]
    unknown = [n for n in only + skip if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; one of {', '.join(names)}")
    left_out = set(skip) | (set() if only else ONLY_WHEN_ASKED[args.size])
    chosen = [(n, extra) for n, extra in BENCHMARKS if (not only or n in only) and n not in left_out]
    print(
        f"# Mercato Scheduler benchmarks, size {args.size}: {time.strftime('%Y-%m-%d %H:%M %Z')}; {_machine()}",
        flush=True,
    )
    results = []
    started_all = time.monotonic()
    for name, extra in chosen:
        if not (HERE / f"{name}.py").exists():
            results.append((name, "not present", 0.0))
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", f"bench.{name}", "--size", args.size, *extra.get(args.size, [])]
        code = subprocess.call(command, cwd=HERE.parent)
        results.append((name, "ok" if code == 0 else f"failed (exit {code})", time.monotonic() - started))
    print(f"\n=== summary ({time.monotonic() - started_all:.0f} s) ===")
    for name in sorted(ONLY_WHEN_ASKED[args.size] - set(skip)) if not only else []:
        print(f"  {name:<14} {'not run at ' + args.size:<18} (python -m bench --size {args.size} --only {name})")
    for name, status, seconds in results:
        print(f"  {name:<14} {status:<18} {seconds:6.0f} s")
    return 0 if all(status in ("ok", "not present") for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
