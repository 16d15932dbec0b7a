"""Benchmark Keel against the real PocketBase, side by side, on this machine.

Keel runs from a snapshot of src/keel taken at start. For each round, one
system at a time (PocketBase, Keel on SQLite, Keel on PostgreSQL, then the
bare-HTTP ceiling): start it on a free 127.0.0.1 port with a fresh data
folder (a freshly recreated database for PostgreSQL), create the same "posts"
collection and the same seeded records through its API, run every scenario
with wrk (a warm-up, then the measured run), and stop it by PID. Then print
the table (best run per cell by requests/s, with the ratio Keel / PocketBase)
and save JSON, Markdown and a PNG chart under bench/results/. See
docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report
import scenario
from server import KEEL_ENV, Launcher
from suite import Session

BIN_DIR = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes", "on"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog="Each option also reads the BENCH_* environment variable named in its help, "
        "so `make bench BENCH_DURATION=3` works.",
    )
    a = p.add_argument
    a(
        "--duration",
        type=float,
        default=float(_env("BENCH_DURATION", "10")),
        help="measured seconds per scenario (BENCH_DURATION, default 10)",
    )
    a(
        "--warmup",
        type=float,
        default=float(_env("BENCH_WARMUP", "3")),
        help="warm-up seconds before each measured run, not counted (BENCH_WARMUP, default 3)",
    )
    a(
        "--repeats",
        type=int,
        default=int(_env("BENCH_REPEATS", "2")),
        help="rounds over all systems; the table shows the best run (BENCH_REPEATS, default 2)",
    )
    a(
        "--allow-single-run",
        action="store_true",
        default=_flag("BENCH_SINGLE"),
        help="allow --repeats 1, for a quick check only (BENCH_SINGLE=1)",
    )
    a("--threads", type=int, default=2, help="wrk threads (default 2)")
    a("--connections", type=int, default=32, help="wrk connections (default 32)")
    a(
        "--workers",
        type=int,
        default=int(_env("BENCH_WORKERS", str(os.cpu_count() or 1))),
        help="Keel and ceiling worker processes (BENCH_WORKERS, default: CPU cores)",
    )
    a("--records", type=int, default=10_000, help="seeded records (default 10,000)")
    a(
        "--large",
        action="store_true",
        default=_flag("BENCH_LARGE"),
        help="also run the list scenarios on --large-records records (BENCH_LARGE=1)",
    )
    a("--large-records", type=int, default=1_000_000, help="records for --large (1,000,000)")
    a(
        "--systems",
        default=_env("BENCH_SYSTEMS", "pocketbase,keel-sqlite,keel-postgres,ceiling"),
        help="comma-separated subset of pocketbase,keel-sqlite,keel-postgres,ceiling "
        "(BENCH_SYSTEMS)",
    )
    a(
        "--scenarios",
        default=_env("BENCH_SCENARIOS", ""),
        help="comma-separated scenario keys to run, default all: "
        + ",".join(s.key for s in scenario.SCENARIOS)
        + " (BENCH_SCENARIOS)",
    )
    a(
        "--postgres-url",
        default=_env("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection used to drop and recreate --postgres-db (BENCH_POSTGRES_URL)",
    )
    a("--postgres-db", default="keel_bench", help="database recreated per run (keel_bench)")
    a(
        "--keel-sqlite-synchronous",
        default=_env("BENCH_KEEL_SYNC", ""),
        help="KEEL_SQLITE_SYNCHRONOUS for Keel on SQLite (BENCH_KEEL_SYNC); default: "
        "Keel's own default (FULL). PocketBase always uses NORMAL",
    )
    a(
        "--delete-pool-factor",
        type=float,
        default=3.0,
        help="records seeded for the delete scenario = factor x the faster of this system's "
        "create/update req/s x seconds (default 3); a pool that runs out shows as 404s",
    )
    a("--seed", type=int, default=42, help="random seed of the data set (default 42)")
    a("--results-dir", type=Path, default=HERE / "results", help="where results are saved")
    a("--work-dir", type=Path, default=None, help="parent of the temporary data folders")
    args = p.parse_args(argv)
    if args.repeats < 2 and not args.allow_single_run:
        p.error("--repeats must be at least 2 (use --allow-single-run for a quick check)")
    return args


def launchers(args: argparse.Namespace, keel_path: str) -> list[Launcher]:
    """The systems asked for; Keel imports from ``keel_path`` first."""
    wanted = args.systems.split(",")
    path = os.pathsep.join(p for p in (keel_path, os.environ.get("PYTHONPATH", "")) if p)
    keel_env = {"PYTHONPATH": path, **KEEL_ENV}
    sync = {"KEEL_SQLITE_SYNCHRONOUS": args.keel_sqlite_synchronous}
    every = [
        Launcher("pocketbase", "pocketbase", BIN_DIR, args.workers),
        Launcher(
            "keel-sqlite",
            "keel",
            BIN_DIR,
            args.workers,
            extra_env={**keel_env, **(sync if args.keel_sqlite_synchronous else {})},
        ),
        Launcher(
            "keel-postgres",
            "keel",
            BIN_DIR,
            args.workers,
            postgres_admin_url=args.postgres_url,
            postgres_database=args.postgres_db,
            extra_env=keel_env,
        ),
        Launcher("ceiling", "ceiling", BIN_DIR, args.workers),
    ]
    chosen = [x for x in every if x.name in wanted]
    if any(x.postgres_admin_url for x in chosen) and not _postgres_up(args.postgres_url):
        print(
            f"warning: PostgreSQL at {args.postgres_url} is unreachable; skipping keel-postgres",
            file=sys.stderr,
        )
        chosen = [x for x in chosen if not x.postgres_admin_url]
    return chosen


def _postgres_up(url: str) -> bool:
    try:
        return (
            subprocess.run(
                ["psql", "-Atq", url, "-c", "SELECT 1"],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _versions() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        return (run.stdout or run.stderr).strip().splitlines()[0]

    return {
        "pocketbase": out([str(BIN_DIR / "pocketbase"), "--version"]),
        "keel": out([str(BIN_DIR / "keel"), "--version"]),
        "uvicorn": out([str(BIN_DIR / "uvicorn"), "--version"]),
        "wrk": out(["wrk", "-v"]),
    }


def snapshot(work_dir: Path) -> tuple[str, str]:
    """Copy ``src/keel`` into ``work_dir``; return its PYTHONPATH entry and a description.

    Every Keel start imports this frozen copy (PYTHONPATH comes before the
    editable install), so edits made to the tree while the bench runs cannot
    mix two versions of Keel in one table.
    """
    source = HERE.parent / "src" / "keel"
    target = work_dir / "src"
    shutil.copytree(source, target / "keel", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted((target / "keel").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())

    def git(*cmd: str) -> str:
        out = subprocess.run(
            ["git", *cmd], cwd=HERE, capture_output=True, text=True, timeout=30, check=False
        )
        return out.stdout.strip()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", str(source)) else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown commit"
    return str(target), f"{head}{dirty}, source digest {digest.hexdigest()[:12]}"


def run_rounds(args: argparse.Namespace, work_dir: Path) -> tuple[Session, list[Launcher], str]:
    """Every round over every system, then the large data set if asked for."""
    keel_path, keel_tree = snapshot(work_dir)
    systems = launchers(args, keel_path)
    bench = Session(args, work_dir)
    for r in range(1, args.repeats + 1):
        for launcher in systems:
            print(f"[round {r}/{args.repeats}] {launcher.name}", file=sys.stderr)
            bench.system(launcher, args.records, report.short(args.records), [r], bench.scenarios)
    if args.large:
        lists = [s for s in bench.scenarios if s.is_list]
        for launcher in (x for x in systems if x.kind != "ceiling"):
            print(f"[large] {launcher.name}: {args.large_records:,} records", file=sys.stderr)
            large = report.short(args.large_records)
            rounds = list(range(1, args.repeats + 1))
            bench.system(launcher, args.large_records, large, rounds, lists)
    return bench, systems, keel_tree


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop servers on SIGTERM too
    started = time.strftime("%Y%m%d-%H%M%S")
    work_dir = Path(tempfile.mkdtemp(prefix="keel-bench-", dir=args.work_dir))
    try:
        bench, systems, keel_tree = run_rounds(args, work_dir)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    names = [x.name for x in systems if x.kind != "ceiling"]
    meta = {
        "started": started,
        "duration": args.duration,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "pick": "best run by req/s",
        "threads": args.threads,
        "connections": args.connections,
        "workers": args.workers,
        "records": args.records,
        "dataset": report.short(args.records),
        "large_records": args.large_records if args.large else None,
        "cpus": os.cpu_count(),
        "keel_sqlite_synchronous": args.keel_sqlite_synchronous or "FULL (Keel default)",
        "password_hashing": bench.hashes,
        "versions": _versions(),
        "keel_tree": keel_tree,
        "starts": bench.starts,
    }
    rows = report.summarize(bench.runs, names, bench.unsupported)
    text = report.render(meta, rows, names)
    print(text)
    for path in report.save(args.results_dir, started, meta, bench.runs, rows, text):
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
