"""The benchmark's results as JSON, a Markdown table and a latency plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin (written by python -m bench; edits here are lost) -->"
END = "<!-- bench:end -->"


def _ratio(berth: float, direct: float) -> str:
    return f"{berth / direct:.2f}x" if direct else "-"


def _target(ok: bool, wanted: str) -> str:
    return f"{'met' if ok else 'MISSED'} ({wanted})"


def _sequential_rows(seq: dict[str, Any]) -> list[str]:
    b, d, c = seq["berth"], seq["direct"], seq["direct_create_only"]
    median = b["median_ms"] / d["median_ms"]
    p90 = b["p90_ms"] / d["p90_ms"]
    return [
        f"| sequential create, median | {b['median_ms']:.2f} ms "
        f"| {d['median_ms']:.2f} ms ({c['median_ms']:.2f} create alone) "
        f"| {median:.2f}x | {_target(median <= 1.10, '<= 1.10x')} |",
        f"| sequential create, p90 | {b['p90_ms']:.2f} ms "
        f"| {d['p90_ms']:.2f} ms ({c['p90_ms']:.2f}) "
        f"| {p90:.2f}x | {_target(p90 <= 1.20, '<= 1.20x')} |",
        f"| sequential create, p99 | {b['p99_ms']:.2f} ms "
        f"| {d['p99_ms']:.2f} ms ({c['p99_ms']:.2f}) "
        f"| {_ratio(b['p99_ms'], d['p99_ms'])} | |",
    ]


def _concurrent_rows(levels: dict[str, Any]) -> list[str]:
    rows = []
    for clients, level in levels.items():
        target = ""
        if clients == "8":
            target = _target(level["ratio"] >= 0.95, ">= 0.95x")
        rows.append(
            f"| creates per second, {clients} clients | {level['berth_per_s']:.1f} "
            f"| {level['direct_per_s']:.1f} | {level['ratio']:.2f}x | {target} |"
        )
    return rows


def _read_rows(reads: dict[str, Any]) -> list[str]:
    b, d = reads["berth"], reads["direct"]
    clients = reads["clients"]
    return [
        f"| metadata reads per second, {clients} clients | {b['per_s']:.0f} "
        f"| {d['per_s']:.0f} (inspect) | {_ratio(b['per_s'], d['per_s'])} "
        f"| {_target(b['per_s'] >= 2000, '>= 2,000/s')} |",
        f"| metadata read p99, {clients} clients | {b['p99_ms']:.2f} ms "
        f"| {d['p99_ms']:.2f} ms | {_ratio(b['p99_ms'], d['p99_ms'])} "
        f"| {_target(b['p99_ms'] < 20, '< 20 ms')} |",
    ]


def _restart_rows(restarts: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in restarts:
        target = ""
        if r["containers"] == 1000:
            target = _target(r["restart_to_reconciled_s"] < 2, "< 2 s")
        rows.append(
            f"| restart + reconcile, {r['containers']} containers "
            f"| {r['restart_to_reconciled_s']:.2f} s "
            f"(reconcile {r['startup_reconcile_ms']:.0f} ms) "
            f"| {r['direct_list_ms']:.0f} ms (one list) | | {target} |"
        )
        rows.append(
            f"| reconcile on a running berth, {r['containers']} containers "
            f"| {r['warm_reconcile_ms']:.0f} ms | {r['direct_list_ms']:.0f} ms "
            f"| {_ratio(r['warm_reconcile_ms'], r['direct_list_ms'])} | |"
        )
    return rows


def render(results: dict[str, Any]) -> str:
    """The Markdown table of one run, with each target's verdict."""
    m = results["memory"]
    rows = [
        "| measure | berth | direct (docker-py) | ratio | target |",
        "|---|---|---|---|---|",
        *_sequential_rows(results["sequential"]),
        *_concurrent_rows(results["concurrent"]),
        *_read_rows(results["reads"]),
        *_restart_rows(results["restart"]),
        f"| resident memory after {results['reads']['requests']:,} reads and "
        f"{m['creates']:,} creates | {m['rss_mb']:.0f} MB | | "
        f"| {_target(m['rss_mb'] < 100, '< 100 MB')} |",
    ]
    return "\n".join(rows)


def _machine(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"{m['date']}, berth {m['berth_commit']}: {m['cores']} cores "
        f"({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, Docker engine {m['engine']} "
        f"(API {m['engine_api']}, {m['storage_driver']})"
        + (
            " (quick sizes: a check of the harness, not figures)"
            if results.get("quick")
            else ""
        )
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """Sequential create latency: berth against direct, as ECDFs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = results["sequential"]["raw_ms"]
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, label in (
        ("direct_create_only", "docker-py create"),
        ("direct", "docker-py create + inspect"),
        ("berth", "berth POST …/create"),
    ):
        values = sorted(raw[key])
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        axes.step(values, fractions, where="post", label=label)
    axes.set_xlabel("latency of one create (ms)")
    axes.set_ylabel("fraction of creates at or below")
    axes.set_title(
        f"Sequential create, {results['sequential']['samples']} each, interleaved"
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_outputs(results: dict[str, Any], out: Path) -> None:
    """benchmarks.json, benchmarks.png, and the table in benchmarks.md."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "benchmarks.png")

    generated = "\n\n".join(
        [
            BEGIN,
            _machine(results),
            render(results),
            "![Sequential create latency, berth and direct](benchmarks.png)",
            END,
        ]
    )
    page = out / "benchmarks.md"
    text = page.read_text() if page.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    page.write_text(head + generated + tail)
