"""Turn the runs into the table, the JSON file and the bar chart.

Each cell is the best of its repeated runs by requests/s (noise on a shared
machine only ever slows a run down), shown with that run's p50 and p99. A
cell is flagged with ``!`` when ANY of its runs, warm-up included, saw a
non-2xx status or a socket error; the footnotes say which statuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from scenario import CEILING, SCENARIOS

LABELS = {"pocketbase": "PocketBase", "keel-sqlite": "Keel SQLite", "keel-postgres": "Keel PG"}
BASELINE = "pocketbase"
TIMES = "\u00d7"  # the multiplication sign of the ratio column


def short(n: int) -> str:
    """``10k``, ``1M``: the data set label of ``n`` records."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return f"{n:,}"


def render(meta: dict[str, Any], rows: list[dict[str, Any]], systems: list[str]) -> str:
    """The heading lines (load shape, hashing cost) and the table."""
    hashing = ", ".join(
        f"{LABELS.get(k, k)} {' then '.join(v)}" for k, v in meta["password_hashing"].items()
    )
    return "\n".join(
        [
            f"Keel vs PocketBase: {meta['duration']:g} s measured after {meta['warmup']:g} s "
            f"warm-up, wrk {meta['threads']} threads / {meta['connections']} connections, "
            f"{meta['records']:,} records, best of {meta['repeats']} run(s) by req/s; "
            f"{meta['workers']} Keel/ceiling workers, {meta['cpus']} CPUs.",
            f"Versions: {meta['versions']['pocketbase']}; {meta['versions']['keel']} "
            f"({meta['keel_tree']}) on uvicorn {meta['versions']['uvicorn'].split()[2]}.",
            f"Password hashing: {hashing}.",
            "SQLite durability: PocketBase synchronous=NORMAL, Keel SQLite synchronous="
            f"{meta.get('keel_sqlite_synchronous', 'FULL (Keel default)')}.",
            *_background_line(meta),
            "",
            table(rows, systems, meta["dataset"]),
        ]
    )


NOISY = 0.25  # background CPU share above which a system start is called noisy


def _background_line(meta: dict[str, Any]) -> list[str]:
    starts = [b for b in meta.get("starts", []) if b["busy"] is not None]
    if not starts:
        return []
    shares = [b["busy"] for b in starts]
    line = (
        f"Background CPU before each system start (nothing of ours running): "
        f"{min(shares):.0%} to {max(shares):.0%}."
    )
    noisy = [
        f"{LABELS.get(b['system'], b['system'])} round {','.join(map(str, b['rounds']))}"
        f"{'' if b['dataset'] == meta['dataset'] else ' [' + b['dataset'] + ']'} "
        f"({b['busy']:.0%})"
        for b in starts
        if b["busy"] > NOISY
    ]
    if noisy:
        line += f" NOISY starts, another workload shared the machine: {'; '.join(noisy)}."
    return [line]


def best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the most requests/s, flagged if any run of the cell had errors."""
    if not runs:
        return None
    top = dict(max(runs, key=lambda r: r["rps"]))
    top["flagged"] = any(r["errors"] or r.get("warmup_errors") for r in runs)
    top["runs"] = len(runs)
    top["rps_all"] = [round(r["rps"]) for r in runs]
    top["all_socket_errors"] = sum(r["socket_errors"] + r["timeouts"] for r in runs)
    top["all_statuses"] = _merge(
        [*(r["statuses"] for r in runs), *(r.get("warmup_statuses", {}) for r in runs)]
    )
    return top


def _merge(items: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for statuses in items:
        for key, n in statuses.items():
            total[key] = total.get(key, 0) + n
    return total


def summarize(
    runs: list[dict[str, Any]], systems: list[str], unsupported: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """One row per (dataset, scenario): the best run per system, the ratios, the n/a notes."""
    rows = []
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))  # in the order they ran
    for dataset in datasets:
        for sc in (*SCENARIOS, CEILING):
            key = sc.key
            cells = {
                system: best(
                    [
                        r
                        for r in runs
                        if (r["dataset"], r["scenario"], r["system"]) == (dataset, key, system)
                    ]
                )
                for system in [*systems, "ceiling"]
            }
            if not any(cells.values()):
                continue
            base = cells.get(BASELINE)
            ratios = {
                s: c["rps"] / base["rps"]
                for s, c in cells.items()
                if c and base and s.startswith("keel") and base["rps"]
            }
            rows.append(
                {
                    "dataset": dataset,
                    "scenario": sc.key,
                    "label": sc.label,
                    "notes": {s: unsupported.get(s, {}).get(key, "") for s in systems},
                    "cells": cells,
                    "ratio_vs_pocketbase": ratios,
                }
            )
    return rows


def _num(cell: dict[str, Any] | None, note: str) -> list[str]:
    if cell is None:
        return [note or "n/a", "", ""]
    flag = " !" if cell["flagged"] else ""
    return [f"{cell['rps']:,.0f}{flag}", f"{cell['p50_ms']:.1f}", f"{cell['p99_ms']:.1f}"]


def _label(row: dict[str, Any], main: str) -> str:
    return str(row["label"]) + (f" [{row['dataset']}]" if row["dataset"] != main else "")


def table(rows: list[dict[str, Any]], systems: list[str], main: str) -> str:
    """The Markdown table (scenario by system) with footnotes and the ceiling line."""
    head = ["scenario"]
    for s in systems:
        head += [f"{LABELS[s]} req/s", "p50 ms", "p99 ms"] + (
            [f"{TIMES}PB"] if s != BASELINE else []
        )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    for row in rows:
        if row["scenario"] == CEILING.key:
            continue
        label = _label(row, main)
        cells = [label]
        for s in systems:
            cell = row["cells"].get(s)
            cells += _num(cell, row["notes"].get(s, ""))
            if s != BASELINE:
                ratio = row["ratio_vs_pocketbase"].get(s)
                cells.append(f"{ratio:.2f}{TIMES}" if ratio is not None else "")
            if cell and cell["flagged"]:
                notes.append(
                    f"! {LABELS[s]} / {label}: non-2xx by status {cell['all_statuses']} "
                    f"(warm-ups included), socket errors+timeouts "
                    f"{cell['all_socket_errors']}; e.g. {cell['samples'][:2]}"
                )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *notes]
    lines += _ceiling_lines(rows, main)
    lines += _cpu_table(rows, systems, main)
    return "\n".join(lines)


def _cpu_table(rows: list[dict[str, Any]], systems: list[str], main: str) -> list[str]:
    """Server CPU time per request in the runs of the table, and PocketBase's over Keel's."""
    cpu_rows = []
    for row in rows:
        if row["scenario"] == CEILING.key:
            continue
        base = row["cells"].get(BASELINE) or {}
        cells = [_label(row, main)]
        for s in systems:
            used = (row["cells"].get(s) or {}).get("cpu_us_per_request")
            cells.append(f"{used:,.0f}" if used is not None else "")
            if s != BASELINE:
                pb_used = base.get("cpu_us_per_request")
                cells.append(f"{pb_used / used:.2f}{TIMES}" if used and pb_used else "")
        cpu_rows.append("| " + " | ".join(cells) + " |")
    if not cpu_rows:
        return []
    head = ["scenario"]
    for s in systems:
        head += [f"{LABELS[s]} µs"] + ([f"PB/{LABELS[s]}"] if s != BASELINE else [])
    return [
        "",
        "Server CPU per request (µs of CPU time of all the server's processes in the same "
        "runs, divided by the requests completed; lower is better; PB/… above 1 means Keel "
        "used less CPU per request; PostgreSQL's own processes are not counted):",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *cpu_rows,
    ]


def _ceiling_lines(rows: list[dict[str, Any]], main: str) -> list[str]:
    ceiling = next((r["cells"]["ceiling"] for r in rows if r["scenario"] == CEILING.key), None)
    if not ceiling:
        return []
    flag = " !" if ceiling["flagged"] else ""
    out = [
        f"{CEILING.label}: {ceiling['rps']:,.0f}{flag} req/s, "
        f"p50 {ceiling['p50_ms']:.1f} ms, p99 {ceiling['p99_ms']:.1f} ms "
        f"(each run: {', '.join(f'{x:,}' for x in ceiling['rps_all'])} req/s)."
    ]
    view = next((r for r in rows if r["scenario"] == "view" and r["dataset"] == main), None)
    if view:
        shares = [
            f"{LABELS[s]} {c['rps'] / ceiling['rps']:.0%}"
            for s, c in view["cells"].items()
            if c and s != "ceiling"
        ]
        out.append("View by id as a share of the ceiling: " + ", ".join(shares) + ".")
    return out


def describe_hash(hashed: str) -> str:
    """``bcrypt cost 10`` or ``argon2id m=65536 KiB, t=3, p=4`` from a stored hash."""
    if m := re.match(r"^\$2[aby]\$(\d+)\$", hashed):
        return f"bcrypt cost {int(m.group(1))}"
    if m := re.match(r"^\$argon2(id|i|d)\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$", hashed):
        return f"argon2{m.group(1)} m={m.group(2)} KiB, t={m.group(3)}, p={m.group(4)}"
    return "unknown hash format"


def save(
    out_dir: Path,
    stamp: str,
    meta: dict[str, Any],
    runs: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    text: str,
) -> list[Path]:
    """Write ``<stamp>.json``, ``<stamp>.md`` and ``<stamp>.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stamp}.json", out_dir / f"{stamp}.md", out_dir / f"{stamp}.png"]
    paths[0].write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=2))
    paths[1].write_text(text + "\n")
    chart(paths[2], rows, meta)
    return paths


def chart(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """Grouped bars of requests/s (log scale); hatched bars had errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = [s for s in LABELS if any(r["cells"].get(s) for r in rows)]
    shown = [r for r in rows if r["scenario"] != CEILING.key]
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(shown)), 5.5))
    for i, system in enumerate(systems):
        for j, row in enumerate(shown):
            cell = row["cells"].get(system)
            if cell:
                ax.bar(
                    j + i * width,
                    cell["rps"],
                    width,
                    color=f"C{i}",
                    hatch="//" if cell["flagged"] else None,
                    label=LABELS[system],
                )
    ceiling = next((r["cells"]["ceiling"] for r in rows if r["scenario"] == CEILING.key), None)
    if ceiling:
        ax.axhline(ceiling["rps"], color="grey", linestyle="--", label="bare-HTTP ceiling")
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (best run, log scale)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shown))])
    ax.set_xticklabels(
        [_label(r, meta["dataset"]) for r in shown],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_title(
        f"Keel vs PocketBase, {meta['duration']:g} s measured, "
        f"best of {meta['repeats']} ({meta['started']})",
        fontsize=10,
    )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one legend entry per system
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
