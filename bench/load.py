"""The load generator and the machine around it: one wrk run per measurement.

wrk runs twice per measurement: a warm-up whose figures are thrown away,
then the measured run, each followed by a wait until the server is idle.
``lua/common.lua`` counts every response that is not 2xx and prints one
``BENCH_RESULT`` JSON line that is parsed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from scenario import RECORDS, Scenario
from server import Running

LUA_DIR = Path(__file__).resolve().parent / "lua"
WRK_TIMEOUT = 30  # seconds; a slower response counts as an error
SETTLE_LIMIT = 180.0  # seconds to wait for a server to finish its backlog


@dataclass(frozen=True)
class Load:
    """The load shape, the same for every system."""

    threads: int
    connections: int
    duration: float
    warmup: float


def wrk(
    load: Load, url: str, scenario: Scenario, seconds: float, env: dict[str, str]
) -> dict[str, Any]:
    """Run wrk once; return its ``BENCH_RESULT`` plus req/s and failure samples."""
    cmd = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        f"{WRK_TIMEOUT}s",
        "-s",
        str(LUA_DIR / scenario.script),
        url + scenario.path,
    ]
    run_env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_THREADS": str(load.threads),
        "BENCH_RECORDS_PATH": RECORDS,
        **scenario.env,
        **env,
    }
    out = subprocess.run(
        cmd, env=run_env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    result: dict[str, Any] | None = None
    samples: list[str] = []
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
        elif line.startswith("BENCH_SAMPLE "):
            samples.append(line.removeprefix("BENCH_SAMPLE "))
    if out.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:500]}")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p50_ms"] = result.pop("p50_us") / 1000
    result["p99_ms"] = result.pop("p99_us") / 1000
    result["errors"] = result["non2xx"] + result["socket_errors"] + result["timeouts"]
    result["samples"] = samples[:5]
    return result


def background_cpu(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` while nothing of ours runs (Linux only).

    Anything well above zero is another workload on the machine: the figures
    of that system start are then noisy, whatever the ratio says.
    """

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1)


def supported(url: str, scenario: Scenario) -> str:
    """``""`` when the system can run ``scenario``, else the note for its cell."""
    if not scenario.needs:
        return ""
    status = httpx.get(url + scenario.path, timeout=120).status_code
    return "" if status == 200 else f"n/a ({scenario.needs} not implemented: HTTP {status})"


def _group_cpu(pgid: int) -> float | None:
    """CPU seconds used so far by the processes of group ``pgid`` (Linux only)."""
    total = 0
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def settle(url: str, probe: str, pgid: int) -> float:
    """Wait until the server is idle again; return the seconds waited.

    When wrk stops, the server still works through the requests in flight
    (32 slow password hashes can take seconds), which would slow the next
    run. Idle means: five probes in a row each answered under 50 ms, and the
    server's process group using under 10 % of a core for half a second.
    """
    started = time.monotonic()
    fast = 0
    while fast < 5 and time.monotonic() - started < SETTLE_LIMIT:
        t = time.monotonic()
        try:
            ok = httpx.get(url + probe, timeout=SETTLE_LIMIT).status_code < 500
        except httpx.HTTPError:
            ok = False
        fast = fast + 1 if ok and time.monotonic() - t < 0.05 else 0
    while time.monotonic() - started < SETTLE_LIMIT:
        before = _group_cpu(pgid)
        time.sleep(0.5)
        after = _group_cpu(pgid)
        if before is None or after is None or after - before < 0.05:
            break
    return time.monotonic() - started


def measure(
    load: Load,
    server: Running,
    scenario: Scenario,
    warm_env: dict[str, str],
    env: dict[str, str],
) -> dict[str, Any]:
    """A warm-up run (figures dropped, errors kept), then the measured run.

    The server settles after each, so neither run inherits the other's backlog.
    """
    url = server.url
    warm = wrk(load, url, scenario, load.warmup, {"BENCH_TAG": "warm", **warm_env})
    settle(url, server.probe, server.pid)
    cpu_before = _group_cpu(server.pid)
    result = wrk(load, url, scenario, load.duration, {"BENCH_TAG": "run", **env})
    cpu_after = _group_cpu(server.pid)
    # CPU time of all the server's processes (and threads) per completed
    # request: a second view of the cost, leaving out time the server spent
    # waiting for a CPU (docs/performance.md, "Reading the numbers").
    result["cpu_us_per_request"] = (
        (cpu_after - cpu_before) / result["requests"] * 1e6
        if cpu_before is not None and cpu_after is not None and result["requests"]
        else None
    )
    result["warmup_errors"] = warm["errors"]
    result["warmup_statuses"] = warm["statuses"]
    result["samples"] += warm["samples"]
    result["settle_s"] = round(settle(url, server.probe, server.pid), 2)
    return result
