"""Realtime benchmark: how many SSE subscribers one machine holds, and fan-out latency.

Starts ``keel serve`` (SQLite, default workers: one per core) on a free
127.0.0.1 port with a fresh data folder, creates a public ``ticks``
collection, then, from this one asyncio process (raw sockets, uvloop when
installed):

(b) latency: opens 1,000 subscribers (``GET /api/realtime``, then ``POST``
    ``ticks/*``), writes ``--writes`` records one after another, each holding
    the wall-clock time just before its ``POST``, and takes every
    subscriber's arrival time of every event: p50/p99/max of arrival - write;
(a) capacity: ramps the subscribers to each of ``--levels`` (default 1,000,
    2,000, 5,000, 10,000), keeping those already open. A level holds when
    every connection opened and subscribed, none was dropped, and one probe
    write reaches all of them within ``--probe-timeout``; the ramp stops at
    the first level that does not, or when ``--budget`` seconds are spent.
    Server RSS (all processes of its group) is read after each level.

The table goes to stdout, progress to stderr, the JSON to
``bench/results/realtime-<timestamp>.json``. The server is stopped by the PID
it was started with (its process group), also on errors and Ctrl-C. The
open-files limit is raised (``resource.setrlimit``) for this process and the
server it starts.

    .venv/bin/python bench/realtime.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
from server import Launcher, Running

HERE = Path(__file__).resolve().parent
BIN_DIR = Path(sys.executable).parent
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"
TOPIC = "ticks/*"
TICKS = {
    "name": "ticks",
    "listRule": "",
    "viewRule": "",
    "fields": [{"name": "t", "type": "number"}, {"name": "level", "type": "number"}],
}
#: Connections opened at once while ramping (below uvicorn's backlog of 2048).
OPEN_CONCURRENCY = 200
#: Keep-alive connections for the subscription POSTs and the writes.
HTTP_CONNECTIONS = 32
#: Open files besides the subscribers' sockets (keep-alive pool, /proc reads…).
FD_HEADROOM = 512
#: Idle seconds after which a keep-alive connection is not reused.
KEEPALIVE_SECONDS = 2.0
CONNECT_TIMEOUT = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Fanout:
    """Arrival times per written record, filled by every subscriber."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.waiters: dict[str, tuple[int, asyncio.Future[None]]] = {}

    def arrived(self, record_id: str, latency: float) -> None:
        got = self.latencies.setdefault(record_id, [])
        got.append(latency)
        waiter = self.waiters.get(record_id)
        if waiter is not None and len(got) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    async def wait(self, record_id: str, count: int, seconds: float) -> bool:
        """Whether ``count`` subscribers got ``record_id`` within ``seconds``."""
        if len(self.latencies.get(record_id, [])) >= count:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters[record_id] = (count, future)
        try:
            await asyncio.wait_for(future, seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters.pop(record_id, None)


class Subscriber(asyncio.Protocol):
    """One ``GET /api/realtime`` stream, parsed as it arrives (chunked SSE)."""

    def __init__(self, host: str, fanout: Fanout) -> None:
        self.host = host
        self.fanout = fanout
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.client_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(
            f"GET /api/realtime HTTP/1.1\r\nHost: {self.host}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        *messages, self.buffer = self.buffer.split(b"\n\n")
        for message in messages:
            name, payload = b"", b""
            for line in message.split(b"\n"):
                if line.startswith(b"event:"):
                    name = line[6:]
                elif line.startswith(b"data:"):
                    payload = line[5:]
            if name == b"PB_CONNECT" and not self.client_id.done():
                self.client_id.set_result(orjson.loads(payload)["clientId"])
            elif name == TOPIC.encode():
                record = orjson.loads(payload)["record"]
                self.fanout.arrived(record["id"], now - record["t"])

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.client_id.done():
            self.client_id.set_exception(ConnectionError("stream closed before PB_CONNECT"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RawHTTP:
    """Keep-alive HTTP/1.1 connections for small JSON requests.

    httpx spends several milliseconds of CPU per request at this concurrency,
    which made this one client process, not the server, the limit.
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.gate = asyncio.Semaphore(size)

    async def request(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Status and body of one request, with ``body`` sent as JSON."""
        async with self.gate:
            # Connections idle for long may be closing on the server's side
            # (uvicorn's keep-alive timeout is 5 s): drop them.
            now = time.monotonic()
            while self.idle and now - self.idle[-1][2] > KEEPALIVE_SECONDS:
                self.idle.pop()[1].close()
            if self.idle:
                reader, writer, _ = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                status, payload, keep = await self._exchange(
                    reader, writer, method, path, orjson.dumps(body), headers or {}
                )
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return status, payload

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        data: bytes,
        headers: dict[str, str],
    ) -> tuple[int, bytes, bool]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        payload = await reader.readexactly(int(fields.get("content-length", "0")))
        return status, payload, fields.get("connection", "").lower() != "close"

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


@dataclass
class Level:
    """One step of the ramp."""

    subscribers: int
    opened: int = 0
    errors: int = 0
    dropped: int = 0
    delivered: int = 0
    open_seconds: float = 0.0
    fanout_p50_ms: float | None = None
    fanout_p99_ms: float | None = None
    fanout_max_ms: float | None = None
    server_rss_mib: float = 0.0
    held: bool = False
    note: str = ""
    error_samples: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process in the group ``pgid``, in MiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:  # field 5, pgrp, counted after "state" and "ppid"
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while being read
    return total / 1024


def raise_open_files(needed: int) -> int:
    """Raise RLIMIT_NOFILE (soft and, as root, hard) to at least ``needed``; the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
    target = needed if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Bench:
    """The subscribers of one server, and the writes that probe them."""

    def __init__(self, running: Running, token: str, args: argparse.Namespace) -> None:
        self.running = running
        self.args = args
        self.host, _, port = running.url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.fanout = Fanout()
        self.subscribers: list[Subscriber] = []
        self.token = token
        self.http = RawHTTP(self.host, self.port, HTTP_CONNECTIONS)
        self.writes = 0

    async def close(self) -> None:
        for sub in self.subscribers:
            sub.close()
        self.http.close()

    async def _open_one(self, gate: asyncio.Semaphore) -> Subscriber:
        async with gate:
            loop = asyncio.get_running_loop()
            host = f"{self.host}:{self.port}"
            _, sub = await asyncio.wait_for(
                loop.create_connection(lambda: Subscriber(host, self.fanout), self.host, self.port),
                CONNECT_TIMEOUT,
            )
            try:
                client_id = await asyncio.wait_for(sub.client_id, CONNECT_TIMEOUT)
                status, body = await asyncio.wait_for(
                    self.http.request(
                        "POST", "/api/realtime", {"clientId": client_id, "subscriptions": [TOPIC]}
                    ),
                    CONNECT_TIMEOUT,
                )
                if status != 204:
                    raise RuntimeError(f"subscribe -> {status} {body[:100]!r}")
            except BaseException:
                sub.close()
                raise
            return sub

    async def grow(self, level: Level, deadline: float) -> None:
        """Open subscribers until there are ``level.subscribers``."""
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        missing = level.subscribers - len(self.subscribers)
        started = time.monotonic()
        tasks = [asyncio.ensure_future(self._open_one(gate)) for _ in range(missing)]
        try:
            done, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for task in tasks:
                task.cancel()
        level.open_seconds = time.monotonic() - started
        if pending:
            level.note = f"{len(pending)} still opening at the time budget"
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                self.subscribers.append(task.result())
            else:
                level.errors += 1
                if len(level.error_samples) < 5:
                    level.error_samples.append(f"{type(exc).__name__}: {exc}"[:200])
        level.errors += len(pending)
        level.opened = len(self.subscribers)

    async def write(self) -> str:
        """One record holding the time just before its POST; its id."""
        self.writes += 1
        status, body = await self.http.request(
            "POST",
            "/api/collections/ticks/records",
            {"t": time.time(), "level": self.writes},
            {"Authorization": self.token},
        )
        if status != 200:
            raise RuntimeError(f"write -> {status} {body[:200]!r}")
        record_id: str = orjson.loads(body)["id"]
        return record_id

    def alive(self) -> int:
        return sum(not s.lost for s in self.subscribers)

    async def probe(self, level: Level) -> None:
        """One write; how many of the live subscribers got it, and how fast."""
        alive = self.alive()
        level.dropped = len(self.subscribers) - alive
        record_id = await self.write()
        await self.fanout.wait(record_id, alive, self.args.probe_timeout)
        got = self.fanout.latencies.get(record_id, [])
        level.delivered = len(got)
        if got:
            level.fanout_p50_ms = round(percentile(got, 0.50) * 1000, 1)
            level.fanout_p99_ms = round(percentile(got, 0.99) * 1000, 1)
            level.fanout_max_ms = round(max(got) * 1000, 1)
        level.server_rss_mib = round(group_rss_mib(self.running.pid), 1)
        level.held = (
            level.errors == 0
            and level.dropped == 0
            and level.opened == level.subscribers
            and level.delivered == level.subscribers
        )

    async def latency(self, writes: int) -> dict[str, Any]:
        """``writes`` sequential writes to the current subscribers; arrival-write statistics."""
        samples: list[float] = []
        per_write_max: list[float] = []
        incomplete = 0
        for _ in range(writes):
            record_id = await self.write()
            if not await self.fanout.wait(record_id, self.alive(), self.args.probe_timeout):
                incomplete += 1
            got = self.fanout.latencies.get(record_id, [])
            samples.extend(got)
            if got:
                per_write_max.append(max(got))
            await asyncio.sleep(self.args.write_gap)  # let the loops go idle between writes
        ms = [s * 1000 for s in samples]
        return {
            "subscribers": len(self.subscribers),
            "writes": writes,
            "deliveries": len(samples),
            "incomplete_writes": incomplete,
            "p50_ms": round(percentile(ms, 0.50), 1) if ms else None,
            "p90_ms": round(percentile(ms, 0.90), 1) if ms else None,
            "p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None,
            "last_subscriber_p50_ms": (
                round(percentile(per_write_max, 0.5) * 1000, 1) if per_write_max else None
            ),
        }


async def login(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        response = await http.post(
            "/api/collections/_superusers/auth-with-password",
            json={"identity": EMAIL, "password": PASSWORD},
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        created = await http.post("/api/collections", json=TICKS, headers={"Authorization": token})
        created.raise_for_status()
        return token


async def run(running: Running, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.budget
    bench = Bench(running, await login(running.url), args)
    levels: list[Level] = []
    latency: dict[str, Any] = {}
    try:
        for n in args.levels:
            level = Level(n)
            levels.append(level)
            if time.monotonic() >= deadline:
                level.note = "not run: time budget spent"
                break
            if n + FD_HEADROOM > args.open_files:
                level.note = f"not run: this process may open {args.open_files} files"
                break
            log(f"level {n}: opening {n - len(bench.subscribers)} subscribers…")
            await bench.grow(level, deadline)
            await bench.probe(level)
            log(
                f"level {n}: opened {level.opened} in {level.open_seconds:.1f} s, "
                f"errors {level.errors}, dropped {level.dropped}, delivered {level.delivered}, "
                f"RSS {level.server_rss_mib} MiB, held={level.held}"
            )
            if n == args.latency_subscribers and level.held:
                log(f"latency: {args.writes} writes to {n} subscribers…")
                latency = await bench.latency(args.writes)
                log(f"latency: {latency}")
            if not level.held:
                break
    finally:
        await bench.close()
    return {
        "levels": [asdict(level) for level in levels],
        "latency": latency,
        "seconds": round(time.monotonic() - started, 1),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Realtime: keel serve (SQLite, {result['meta']['workers']} workers), "
        f"{result['meta']['cpus']} CPUs, client in one asyncio process",
        "",
        "| subscribers | held | opened | errors | dropped | probe delivered "
        "| fan-out p50 / p99 / max (ms) | open time (s) | server RSS (MiB) |",
        "|---:|:---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for lv in result["levels"]:
        if lv["note"].startswith("not run"):
            lines.append(f"| {lv['subscribers']:,} | {lv['note']} |")
            continue
        lines.append(
            f"| {lv['subscribers']:,} | {'yes' if lv['held'] else 'no'} | {lv['opened']:,} "
            f"| {lv['errors']} | {lv['dropped']} | {lv['delivered']:,} "
            f"| {lv['fanout_p50_ms']} / {lv['fanout_p99_ms']} / {lv['fanout_max_ms']} "
            f"| {lv['open_seconds']:.1f} | {lv['server_rss_mib']} |"
            + (f" {lv['note']}" if lv["note"] else "")
        )
    lat = result["latency"]
    if lat:
        lines += [
            "",
            f"Delivery latency, {lat['writes']} sequential writes to {lat['subscribers']:,} "
            f"subscribers ({lat['deliveries']:,} deliveries): p50 {lat['p50_ms']} ms, "
            f"p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; "
            f"the last subscriber of a write, p50 {lat['last_subscriber_p50_ms']} ms",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--levels",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1000, 2000, 5000, 10000],
        help="subscriber counts to ramp through (comma-separated)",
    )
    parser.add_argument("--latency-subscribers", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=30, help="writes for the latency run")
    parser.add_argument("--write-gap", type=float, default=0.2, help="seconds between writes")
    parser.add_argument("--probe-timeout", type=float, default=30.0)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the whole run")
    parser.add_argument("--workers", type=int, default=0, help="keel serve --workers (0: cores)")
    parser.add_argument(
        "--sqlite-synchronous", default="", help="KEEL_SQLITE_SYNCHRONOUS (default: Keel's, FULL)"
    )
    parser.add_argument("--results", type=Path, default=HERE / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = args.open_files = raise_open_files(max(args.levels) + FD_HEADROOM)
    try:
        import uvloop

        run_loop: Any = uvloop.run
    except ImportError:
        run_loop = asyncio.run
    workers = args.workers or (os.cpu_count() or 1)
    launcher = Launcher(
        name="keel-sqlite",
        kind="keel",
        bin_dir=BIN_DIR,
        workers=workers,
        extra_env={"KEEL_ARGON2_TIME_COST": "1", "KEEL_ARGON2_MEMORY_KIB": "1024"},
    )
    if args.sqlite_synchronous:
        launcher.extra_env["KEEL_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
    with (
        tempfile.TemporaryDirectory(prefix="keel-bench-realtime-") as tmp,
        launcher.start(Path(tmp), EMAIL, PASSWORD) as running,
    ):
        log(f"keel serve pid {running.pid} at {running.url}, open-files limit {limit}")
        result = run_loop(run(running, args))
    result["meta"] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "workers": workers,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "open_files_limit": limit,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(render(result))
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"realtime-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
