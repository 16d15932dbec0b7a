"""One benchmark session: start each system, seed it, measure every scenario.

``Session.system`` is one start of one system: a fresh data folder (and a
fresh PostgreSQL database), the same seeded records, the scenarios for each
round asked for, then the stop. Every measured run becomes one dict in
``Session.runs``; ``report`` turns them into the table.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import load
import report
import scenario
import seed
from server import Launcher, Running

EMAIL, PASSWORD = "bench@example.com", "bench-password-1234"


class Session:
    """Runs the rounds and collects one dict per measured run."""

    def __init__(self, args: argparse.Namespace, work_dir: Path) -> None:
        self.args = args
        self.work_dir = work_dir
        self.load = load.Load(args.threads, args.connections, args.duration, args.warmup)
        keys = set(args.scenarios.split(",")) if args.scenarios else None
        self.scenarios = [s for s in scenario.SCENARIOS if keys is None or s.key in keys]
        self.runs: list[dict[str, Any]] = []
        self.hashes: dict[str, list[str]] = {}  # system -> distinct hashing costs seen
        self.unsupported: dict[str, dict[str, str]] = {}  # system -> scenario key -> note
        self.background: float | None = None  # of the current system start
        self.starts: list[dict[str, Any]] = []  # one per system start, with background CPU
        self.member_token = ""  # the rule scenario's caller, on the current system start

    def system(
        self,
        launcher: Launcher,
        records: int,
        dataset: str,
        rounds: list[int],
        scenarios: list[scenario.Scenario],
    ) -> None:
        """Start ``launcher`` fresh, seed ``records``, run ``scenarios`` for each round."""
        folder = self.work_dir / f"{len(self.starts) + 1:02d}"
        self.background = load.background_cpu()
        self.starts.append(
            {
                "system": launcher.name,
                "rounds": rounds,
                "dataset": dataset,
                "busy": self.background,
            }
        )
        if self.background is not None:
            print(f"  background CPU before start: {self.background:.0%}", file=sys.stderr)
        try:
            with launcher.start(folder, EMAIL, PASSWORD) as running:
                if launcher.kind == "ceiling":
                    for r in rounds:
                        self._run(launcher.name, running, scenario.CEILING, dataset, r)
                    return
                self._seed(running.url, records, launcher.name)
                cost = report.describe_hash(launcher.password_hash(running.data_dir))
                if cost not in self.hashes.setdefault(launcher.name, []):
                    self.hashes[launcher.name].append(cost)
                for r in rounds:
                    rates: dict[str, float] = {}
                    for sc in scenarios:
                        if note := load.supported(running.url, sc):
                            self.unsupported.setdefault(launcher.name, {})[sc.key] = note
                            print(f"  {sc.label:<55} {note}", file=sys.stderr)
                            continue
                        pools: tuple[dict[str, str], dict[str, str]] = ({}, {})
                        if sc.key == "delete":
                            pools = self._delete_pools(running.url, rates)
                        rates[sc.key] = self._run(launcher.name, running, sc, dataset, r, *pools)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _seed(self, url: str, records: int, name: str) -> None:
        started = time.monotonic()
        token = seed.login(url, EMAIL, PASSWORD)
        seed.prepare(url, token)
        seed.load(url, token, seed.records(records, self.args.seed))
        self.member_token = seed.load_notes(url, token, self.args.seed)
        total = seed.count(url)
        if total != records:
            raise RuntimeError(f"{name} holds {total} records after seeding {records}")
        print(
            f"  seeded {records:,} records in {time.monotonic() - started:.1f} s", file=sys.stderr
        )

    def _delete_pools(
        self, url: str, rates: dict[str, float]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Seed one pool for the warm-up (``w…`` ids) and one for the measured run (``d…``)."""
        rate = max([rates.get("create", 0.0), rates.get("update", 0.0)]) or 2000.0
        envs = []
        token = seed.login(url, EMAIL, PASSWORD)
        for prefix, seconds in (("w", self.load.warmup), ("d", self.load.duration)):
            size = math.ceil(rate * seconds * self.args.delete_pool_factor) + 1000
            seed.load(url, token, seed.records(size, self.args.seed, prefix))
            envs.append({"BENCH_ID_PREFIX": prefix, "BENCH_ID_COUNT": str(size)})
        return envs[0], envs[1]

    def _run(
        self,
        system: str,
        running: Running,
        sc: scenario.Scenario,
        dataset: str,
        rnd: int,
        warm_env: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> float:
        env = {
            **(env or {}),
            "BENCH_EMAIL": EMAIL,
            "BENCH_PASSWORD": PASSWORD,
            "BENCH_TOKEN": self.member_token,
        }
        result = load.measure(self.load, running, sc, {**env, **(warm_env or {})}, env)
        result.update(
            system=system,
            scenario=sc.key,
            dataset=dataset,
            round=rnd,
            background_cpu=self.background,
        )
        self.runs.append(result)
        flag = (
            f"  ERRORS {result['statuses']} {result['samples'][:1]}"
            if (result["errors"] or result["warmup_errors"])
            else ""
        )
        print(
            f"  {sc.label:<55} {result['rps']:>9,.0f} req/s  p50 {result['p50_ms']:7.1f} ms"
            f"  p99 {result['p99_ms']:7.1f} ms{flag}",
            file=sys.stderr,
        )
        return float(result["rps"])
