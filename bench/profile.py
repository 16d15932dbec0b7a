"""Profile Keel under one benchmark scenario: where a worker's time goes.

Starts ``keel serve`` (SQLite, or PostgreSQL with ``--postgres``; one
worker unless ``--workers``), seeds the
benchmark's records, runs a scenario with wrk and samples the worker with
py-spy at the same time. Prints the share of the worker's main-thread
samples by layer (the package of the innermost frame) and the functions
that appear in most samples. The raw py-spy output is kept with ``--raw``.

    .venv/bin/python bench/profile.py view
    .venv/bin/python bench/profile.py create --seconds 20 --raw /tmp/create.txt

Run it on a quiet machine: the shares are of samples, not of wall time.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import load
import scenario
import seed
from server import KEEL_ENV, Launcher
from suite import EMAIL, PASSWORD

HERE = Path(__file__).resolve().parent
BIN_DIR = Path(sys.executable).parent
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*):\d+\)$")

#: Innermost-frame path fragments, most specific first, and the layer they belong to.
LAYERS = (
    ("keel/storage/db", "Keel storage/db (database adapters)"),
    ("asyncpg", "asyncpg (PostgreSQL driver and pool)"),
    ("keel/http", "Keel http"),
    ("keel/", "Keel core (actions, records, rules, presentation)"),
    ("uvicorn", "uvicorn (HTTP parsing, socket writes)"),
    ("httptools", "uvicorn (HTTP parsing, socket writes)"),
    ("starlette", "Starlette (routing, middleware, Request/Response)"),
    ("asyncio/runners", "event loop, waiting"),
    ("asyncio/base_events", "event loop, waiting"),
    ("asyncio", "asyncio machinery"),
    ("contextlib", "asyncio machinery"),
)


def layer_of(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match.group("path") if match else frame
    return next((name for part, name in LAYERS if part in path), "other")


def summarize(raw: str, top: int) -> str:
    """The main thread's samples by layer, then the functions in most samples."""
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or "MainThread" not in frames[0]:
            continue
        n = int(count)
        total += n
        layers[layer_of(frames[-1])] += n
        seen = set()
        for frame in frames[1:]:
            match = _FRAME.match(frame)
            # keel/cli frames (the server's entry point) are in every sample.
            if match is None or "keel/" not in match.group("path") or "keel/cli" in frame:
                continue
            name = f"{match.group('func')} ({match.group('path').rsplit('keel/', 1)[-1]})"
            if name not in seen:
                seen.add(name)
                functions[name] += n
    if not total:
        return "no samples of the main thread"
    lines = [f"{total:,} samples of the main thread", "", "by layer (innermost frame):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()]
    lines += ["", f"Keel functions in most samples (top {top}):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in functions.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    keys = [s.key for s in scenario.SCENARIOS if s.key not in {"delete", "auth"}]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("scenario", choices=keys, help="the benchmark scenario to run")
    p.add_argument("--seconds", type=float, default=10, help="sampled seconds (default 10)")
    p.add_argument("--workers", type=int, default=1, help="keel serve --workers (default 1)")
    p.add_argument("--records", type=int, default=10_000, help="seeded records (default 10,000)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    p.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    p.add_argument("--raw", type=Path, help="also save py-spy's raw output here")
    p.add_argument(
        "--postgres",
        metavar="URL",
        help="profile Keel on PostgreSQL: an admin URL; the database keel_profile is recreated",
    )
    args = p.parse_args(argv)
    chosen = next(s for s in scenario.SCENARIOS if s.key == args.scenario)
    py_spy = BIN_DIR / "py-spy"
    if not py_spy.exists():
        sys.exit(f"{py_spy} is missing: make bench installs it (pip install py-spy)")

    launcher = Launcher("keel-sqlite", "keel", BIN_DIR, args.workers, extra_env=KEEL_ENV)
    if args.postgres:
        launcher.name = "keel-postgres"
        launcher.postgres_admin_url = args.postgres
        launcher.postgres_database = "keel_profile"
    bench_load = load.Load(threads=2, connections=32, duration=args.seconds, warmup=3)
    with tempfile.TemporaryDirectory(prefix="keel-profile-") as tmp:
        with launcher.start(Path(tmp), EMAIL, PASSWORD) as running:
            url = running.url
            token = seed.login(url, EMAIL, PASSWORD)
            seed.prepare(url, token)
            seed.load(url, token, seed.records(args.records, 42))
            member = {"BENCH_TOKEN": seed.load_notes(url, token, 42)}  # the rule scenario
            load.wrk(bench_load, url, chosen, 3, {"BENCH_TAG": "warm", **member})
            worker = _worker_pid(running.pid)
            raw = Path(tmp) / "raw.txt"
            spy_cmd = [str(py_spy), "record", "-p", str(worker), "-r", str(args.rate)]
            spy_cmd += ["-d", f"{args.seconds:g}", "-f", "raw", "-o", str(raw)]
            spy_cmd += ["--threads", "--nonblocking"]
            spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            result = load.wrk(bench_load, url, chosen, args.seconds, {"BENCH_TAG": "run", **member})
            _, err = spy.communicate(timeout=args.seconds + 60)
            if spy.returncode != 0 or not raw.exists():
                sys.exit(f"py-spy failed: {err.decode(errors='replace').strip()[:500]}")
            text = raw.read_text()
        if args.raw is not None:
            args.raw.write_text(text)
    print(
        f"{launcher.name}, {chosen.label}: {result['rps']:,.0f} req/s on {args.workers} worker(s), "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"{result['errors']} errors; worker pid {worker}"
    )
    print(summarize(text, args.top))


def _worker_pid(server_pid: int) -> int:
    """The process serving requests: the server itself, or its first worker process."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    workers = [p for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    return workers[0] if workers else server_pid


if __name__ == "__main__":
    main()
