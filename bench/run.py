"""berth against the engine it drives, side by side in one run.

    uv run --frozen python -m bench [--quick] [--out docs]

Starts a berth server of its own (SQLite, the local engine, JSON logs to a
file), and measures, each beside what a docker-py caller pays on the same
engine for the same answer:

- sequential create latency, berth and direct interleaved, the order
  swapped every pair, so that engine drift hits both alike;
- concurrent create throughput at 1, 4, 8 and 16 clients;
- metadata reads at 8 clients (berth's GET, the engine's inspect);
- restart + reconcile of 100 and 1,000 containers;
- the server's resident memory after 10,000 reads and 1,000 creates.

Writes ``benchmarks.json`` and ``benchmarks.png`` into ``--out`` and the
table into ``benchmarks.md`` there, between its generated-section marks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from bench.engine import Direct
from bench.load import Client, Run, in_parallel, percentile, timed
from bench.report import render, write_outputs
from tests.support.server import BerthServer

DOCKER_HOST = os.environ.get("BERTH_DOCKER_HOST", "unix:///var/run/docker.sock")
IMAGE = os.environ.get("BERTH_TEST_IMAGE", "berth-test/busybox:latest")

# The server under test runs from an environment of berth's runtime
# dependencies alone, as deployed. In the development environment the test
# tools bring rich along, which structlog then imports: 14 MB and a tenth
# of a second that no deployed berth pays.
SERVER_ENV = Path(".venv-bench")

# How long a restarted berth may take to report its start-up reconcile
# before the benchmark calls it a failure rather than a slow figure.
RECONCILE_WAIT_S = 120.0


@dataclass(frozen=True)
class Sizes:
    sequential: int = 150
    concurrent_levels: tuple[int, ...] = (1, 4, 8, 16)
    concurrent_per_round: int = 48
    reads: int = 10_000
    read_clients: int = 8
    creates_before_memory: int = 1_000
    reconcile: tuple[int, ...] = (100, 1_000)


QUICK = Sizes(
    sequential=12,
    concurrent_levels=(1, 4),
    concurrent_per_round=8,
    reads=400,
    creates_before_memory=40,
    reconcile=(10,),
)


def task_spec(arn: str) -> dict[str, Any]:
    """One small container: what a create costs, not what an image costs."""
    return {
        "arn": arn,
        "family": "bench",
        "version": "1",
        "containers": [
            {
                "name": "main",
                "image": IMAGE,
                "command": ["sleep", "3600"],
                "memory_mib": 64,
                "environment": {"ROLE": "bench"},
            }
        ],
    }


@dataclass
class Berth:
    """A berth server of the benchmark's own and a client for it."""

    server: BerthServer
    run_id: str
    made: list[str] = field(default_factory=list)
    creates: int = 0

    def client(self) -> Client:
        return Client(self.server.url)

    def register(self, count: int) -> list[str]:
        """Register ``count`` one-container tasks; their task IDs."""
        client = self.client()
        try:
            ids = []
            for _ in range(count):
                arn = f"arn:aws:ecs:bench:000000000000:task/{self.run_id}/" + (
                    secrets.token_hex(8)
                )
                ids.append(client.json("POST", "/v1/tasks", task_spec(arn))["id"])
        finally:
            client.close()
        self.made.extend(ids)
        return ids

    def create(self, client: Client, task_id: str) -> None:
        status, body = client.request(
            "POST", f"/v1/tasks/{task_id}/containers/main/create"
        )
        if status != 201:
            raise RuntimeError(f"create answered {status}: {body[:300]!r}")
        self.creates += 1

    def create_all(self, task_ids: list[str], clients: int) -> Run:
        shares = [task_ids[i::clients] for i in range(clients)]
        return in_parallel([self._creator(share) for share in shares])

    def _creator(self, task_ids: list[str]) -> Callable[[], list[float]]:
        def work() -> list[float]:
            client = self.client()
            try:
                return [timed(partial(self.create, client, t)) for t in task_ids]
            finally:
                client.close()

        return work

    def delete_all(self) -> None:
        def delete(task_id: str) -> None:
            client = self.client()
            try:
                client.request("DELETE", f"/v1/tasks/{task_id}?timeout=0")
            finally:
                client.close()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(delete, self.made))
        self.made.clear()

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


def server_python() -> str:
    """The interpreter of the deployed-like environment, made or updated."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(SERVER_ENV.resolve())}
    subprocess.run(
        ["uv", "sync", "--frozen", "--no-dev", "--compile-bytecode", "--quiet"],
        env=env,
        check=True,
    )
    python = str(SERVER_ENV.resolve() / "bin" / "python")
    # As an installed wheel is: compiled, so no start pays for it.
    subprocess.run([python, "-m", "compileall", "-q", "app"], check=True)
    return python


@contextmanager
def berth_server(state: Path, run_id: str, python: str) -> Iterator[Berth]:
    state.mkdir(parents=True, exist_ok=True)
    env = {
        "BERTH_STATE_DIR": str(state),
        "BERTH_DOCKER_HOST": DOCKER_HOST,
        "BERTH_HOST_ID": f"bench-{run_id}",
        "BERTH_LOG_FORMAT": "json",
        "PYTHONPATH": str(Path.cwd()),
    }
    server = BerthServer(env, state / "berth.log", python).start()
    berth = Berth(server, run_id)
    try:
        yield berth
    finally:
        try:
            berth.delete_all()
        finally:
            server.stop()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "median_ms": _ms(percentile(latencies, 50)),
        "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)),
    }


def sequential(berth: Berth, direct: Direct, samples: int) -> dict[str, Any]:
    """One create at a time, berth and direct taking turns to go first."""
    task_ids = berth.register(samples)
    client = berth.client()
    berth_s: list[float] = []
    direct_create_s: list[float] = []
    direct_s: list[float] = []

    def one_berth(task_id: str) -> None:
        berth_s.append(timed(lambda: berth.create(client, task_id)))

    def one_direct(i: int) -> None:
        create_only, both = direct.create_and_inspect(f"direct-{i}")
        direct_create_s.append(create_only)
        direct_s.append(both)

    try:
        for i, task_id in enumerate(task_ids):
            if i % 2 == 0:
                one_berth(task_id)
                one_direct(i)
            else:
                one_direct(i)
                one_berth(task_id)
    finally:
        client.close()
    direct.remove_all()

    return {
        "samples": samples,
        "berth": _summary(berth_s),
        "direct": _summary(direct_s),
        "direct_create_only": _summary(direct_create_s),
        "raw_ms": {
            "berth": [_ms(s) for s in berth_s],
            "direct": [_ms(s) for s in direct_s],
            "direct_create_only": [_ms(s) for s in direct_create_s],
        },
    }


def _direct_round(direct: Direct, clients: int, total: int) -> Run:
    def worker(count: int) -> Callable[[], list[float]]:
        return lambda: [direct.create_and_inspect("c")[1] for _ in range(count)]

    shares = [total // clients + (i < total % clients) for i in range(clients)]
    return in_parallel([worker(n) for n in shares])


def concurrent(berth: Berth, direct: Direct, sizes: Sizes) -> dict[str, Any]:
    """Creates per second with ``clients`` callers; two rounds a side."""
    levels = {}
    for clients in sizes.concurrent_levels:
        rates: dict[str, list[float]] = {"berth": [], "direct": []}
        for round_ in range(2):
            task_ids = berth.register(sizes.concurrent_per_round)
            sides = [
                ("berth", partial(berth.create_all, task_ids, clients)),
                (
                    "direct",
                    partial(_direct_round, direct, clients, sizes.concurrent_per_round),
                ),
            ]
            for side, measure in sides if round_ == 0 else sides[::-1]:
                rates[side].append(measure().per_second)
            berth.delete_all()
            direct.remove_all()
        berth_rate = sum(rates["berth"]) / 2
        direct_rate = sum(rates["direct"]) / 2
        levels[str(clients)] = {
            "berth_per_s": round(berth_rate, 1),
            "direct_per_s": round(direct_rate, 1),
            "ratio": round(berth_rate / direct_rate, 3),
        }
    return levels


def _reader(base: str, path: str, count: int) -> Callable[[], list[float]]:
    def work() -> list[float]:
        client = Client(base)
        try:
            latencies = []
            for _ in range(count):
                started = time.perf_counter()
                status, _ = client.request("GET", path)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}")
            return latencies
        finally:
            client.close()

    return work


def _read_figures(run: Run) -> dict[str, float]:
    return {
        "per_s": round(run.per_second, 1),
        "p50_ms": _ms(run.percentile(50)),
        "p99_ms": _ms(run.percentile(99)),
    }


def reads(berth: Berth, direct: Direct, sizes: Sizes) -> dict[str, Any]:
    """GET of one container's metadata, and the engine's inspect of it."""
    (task_id,) = berth.register(1)
    client = berth.client()
    try:
        berth.create(client, task_id)
        view = client.json("GET", f"/v1/tasks/{task_id}/containers/main")
    finally:
        client.close()

    clients = sizes.read_clients
    per_client = sizes.reads // clients
    berth_path = f"/v1/tasks/{task_id}/containers/main"
    api = direct.api.api_version
    docker_path = f"/v{api}/containers/{view['docker_id']}/json"

    def measure(base: str, path: str) -> Run:
        return in_parallel([_reader(base, path, per_client)] * clients)

    # A short warm-up each, then the measured runs, berth's twice around
    # the engine's so that neither sits alone in a quiet or a busy moment.
    measure(berth.server.url, berth_path)
    measure(DOCKER_HOST, docker_path)
    first = measure(berth.server.url, berth_path)
    engine = measure(DOCKER_HOST, docker_path)
    second = measure(berth.server.url, berth_path)
    both = Run(first.latencies + second.latencies, first.wall_s + second.wall_s)
    return {
        "clients": clients,
        "requests": len(both.latencies),
        "berth": _read_figures(both),
        "direct": _read_figures(engine),
    }


def memory(berth: Berth, sizes: Sizes) -> dict[str, Any]:
    """Resident memory once the server has made enough creates."""
    missing = sizes.creates_before_memory - berth.creates
    if missing > 0:
        berth.create_all(berth.register(missing), 8)
    rss = psutil.Process(berth.pid).memory_info().rss
    return {"creates": berth.creates, "rss_mb": round(rss / 2**20, 1)}


def _wait_for_reconcile(log: Path, offset: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") == "reconcile.done":
                    return event
        time.sleep(0.005)
    raise TimeoutError(f"no reconcile.done in {log} within {timeout:g} s")


def restart(berth: Berth, direct: Direct, count: int) -> dict[str, Any]:
    """kill -9 with ``count`` containers, one in ten removed meanwhile."""
    berth.create_all(berth.register(count), 8)
    client = berth.client()
    try:
        # The first reconcile after the creates warms up; the second counts.
        client.request("POST", "/v1/reconcile")
        warm_s = timed(lambda: client.request("POST", "/v1/reconcile"))
    finally:
        client.close()
    label = f"io.berth.host-id=bench-{berth.run_id}"
    listing_s = timed(lambda: direct.list_labelled(label))

    berth.server.kill()
    gone = direct.api.containers(all=True, filters={"label": label})[: count // 10]
    for container in gone:
        direct.api.remove_container(container["Id"], force=True)

    log = berth.server.log_path
    offset = log.stat().st_size
    started = time.perf_counter()
    berth.server.start(wait=False)
    done = _wait_for_reconcile(log, offset, RECONCILE_WAIT_S)
    reconciled_s = time.perf_counter() - started
    berth.server.wait_healthy()

    return {
        "containers": count,
        "removed_while_down": len(gone),
        "restart_to_reconciled_s": round(reconciled_s, 3),
        "startup_reconcile_ms": done.get("elapsed_ms"),
        "found_removed": done.get("removed"),
        "warm_reconcile_ms": _ms(warm_s),
        "direct_list_ms": _ms(listing_s),
    }


def machine(direct: Direct) -> dict[str, Any]:
    version = direct.version()
    info = direct.info()
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "engine": version.get("Version"),
        "engine_api": version.get("ApiVersion"),
        "storage_driver": info.get("Driver"),
        "berth_commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run(sizes: Sizes) -> dict[str, Any]:
    run_id = secrets.token_hex(4)
    direct = Direct(DOCKER_HOST, task_spec("arn:aws:ecs:bench:0:task/direct"))
    results: dict[str, Any] = {"machine": machine(direct)}

    python = server_python()
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        with berth_server(Path(tmp) / "a", run_id, python) as berth:
            step("sequential creates", sizes.sequential)
            results["sequential"] = sequential(berth, direct, sizes.sequential)
            step("concurrent creates", sizes.concurrent_levels)
            results["concurrent"] = concurrent(berth, direct, sizes)
            step("metadata reads", sizes.reads)
            results["reads"] = reads(berth, direct, sizes)
            step("memory after creates", sizes.creates_before_memory)
            results["memory"] = memory(berth, sizes)

        results["restart"] = []
        for count in sizes.reconcile:
            step("restart + reconcile", count)
            with berth_server(Path(tmp) / f"r{count}", run_id, python) as berth:
                results["restart"].append(restart(berth, direct, count))
    return results


def step(what: str, size: object) -> None:
    print(f"bench: {what} ({size})", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: check the harness runs"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs"), help="folder for the results"
    )
    args = parser.parse_args(argv)

    results = run(QUICK if args.quick else Sizes())
    results["quick"] = args.quick
    write_outputs(results, args.out)
    print(render(results))
    return 0
