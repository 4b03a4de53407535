"""What the proxy costs: the same chat completion sent straight to a fast fake upstream, through a
minimal hand-written relay (the floor, `bench/floor.py`) and through `ftm api`, in one run.

Everything runs as production runs it: `ftm api --workers <cores>` and the floor on uvicorn
(uvloop, httptools) with as many workers, the upstream (`bench/upstream.py`) answering after
0 ms and after 50 ms. Traffic to ftm names a deployment (made in the bench's own database), so
routing goes through a deployment's version as a client's would, and usage metering and per-minute
limits are on (limits high enough never to refuse, counted in a real Redis when there is one).
With `BENCH_PROXY_COMPARE=1` a second `ftm api` with `FTM_LEAN_PROXY=false` (the proxy's routes
served through FastAPI's routing, dependencies and middlewares) is measured beside it. For concurrency 1, 16 and 64,
non-streamed and streamed (the sample is then the time to the first chunk), it prints requests/s,
the p50/p99 latency added over calling the upstream directly, the share of direct throughput, and
CPU milliseconds per request of the server's processes (the master and its workers, from /proc),
and after the table each server's CPU per second with no requests (at 20 requests/s, the 50 ms
upstream at concurrency 1, that share of each request's CPU is spent whether requests come or not;
/proc counts in 10 ms ticks, so those rows' CPU per request is also the coarsest).

Figures are never asserted (machines are noisy); compare ftm with the floor of the same run.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
import uvloop

from bench.load import Result, run_load
from devtools.devstack import free_port
from service.auth import service as auth
from service.auth.keys import ALL_SCOPES
from service.config import Settings
from service.db import make_engine, make_session_factory, session_scope
from service.migrate import upgrade

MODEL = "gpt-4o-mini-2024-07-18"
DEPLOYMENT = "bench-bot"
CONCURRENCY = (1, 16, 64)
DELAYS_MS = (0, 50)
DURATION_S = {0: 2.0, 50: 3.0}
WARMUP_S = 1.0
IDLE_S = 5.0
BENCH_REDIS_URL = "redis://127.0.0.1:6379/11"  # a real Redis if there is one (limits, pub/sub)
# Per-minute limits of every key and tenant: counted on every request, far above what is sent.
LIMITS = {
    "FTM_KEY_REQUESTS_PER_MINUTE": "100000000",
    "FTM_KEY_TOKENS_PER_MINUTE": "1000000000",
    "FTM_TENANT_REQUESTS_PER_MINUTE": "100000000",
    "FTM_TENANT_TOKENS_PER_MINUTE": "1000000000",
}
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # the chat completions URL
    model: str
    headers: dict[str, str]
    pid: int | None  # the server's master process (None: not measured)


@dataclass(frozen=True)
class Row:
    target: str
    delay_ms: int
    stream: bool
    concurrency: int
    result: Result
    cpu_s: float | None


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's workers are its children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_s(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * TICK_S


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.1)


@contextmanager
def _process(args: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    process = subprocess.Popen([sys.executable, *args], env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _redis_url() -> str:
    try:
        redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return "redis://127.0.0.1:1/0"  # none: the proxy serves on, with only its cache TTL
    return BENCH_REDIS_URL


def _make_key(data: Path) -> str:
    settings = Settings(_env_file=None, data_dir=data)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        _, key = auth.create_key(session, auth.get_or_create_tenant(session, "bench"), scopes=ALL_SCOPES)
    engine.dispose()
    return key


def _body(target: Target, delay_ms: int, stream: bool) -> bytes:
    body = {
        "model": target.model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
        "bench_delay_ms": delay_ms,
    }
    return json.dumps(body).encode()


async def _measure(targets: list[Target]) -> list[Row]:
    rows = []
    for delay_ms in DELAYS_MS:
        for stream in (False, True):
            for concurrency in CONCURRENCY:
                for target in targets:
                    body = _body(target, delay_ms, stream)
                    await run_load(
                        target.url,
                        body,
                        target.headers,
                        concurrency=16,
                        duration_s=WARMUP_S,
                        first_byte=stream,
                    )
                    before = _cpu_s(target.pid) if target.pid is not None else None
                    result = await run_load(
                        target.url,
                        body,
                        target.headers,
                        concurrency=concurrency,
                        duration_s=DURATION_S[delay_ms],
                        first_byte=stream,
                    )
                    cpu = (
                        _cpu_s(target.pid) - before if target.pid is not None and before is not None else None
                    )
                    rows.append(Row(target.name, delay_ms, stream, concurrency, result, cpu))
    return rows


def _idle_cpu_ms_per_s(targets: list[Target]) -> dict[str, float]:
    """Each server's CPU with no request coming (timers, background threads), over the same
    seconds: at 20 requests/s (the 50 ms upstream at concurrency 1) it is part of every row's
    CPU per request, the floor's too."""
    pids = {target.name: target.pid for target in targets if target.pid is not None}
    before = {name: _cpu_s(pid) for name, pid in pids.items()}
    time.sleep(IDLE_S)
    return {name: (_cpu_s(pid) - before[name]) * 1000 / IDLE_S for name, pid in pids.items()}


def _quantile_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def _table(rows: list[Row]) -> str:
    direct = {(r.delay_ms, r.stream, r.concurrency): r for r in rows if r.target == "direct"}
    lines = [
        "| upstream | mode | c | target | req/s | % of direct | p50 ms | added p50 ms | added p99 ms "
        "| CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = direct[(row.delay_ms, row.stream, row.concurrency)]
        samples, base_samples = row.result.latencies_s, base.result.latencies_s
        if not samples or not base_samples:
            lines.append(
                f"| {row.delay_ms} ms | … | {row.concurrency} | {row.target} | no answers | | | | | | |"
            )
            continue
        p50 = statistics.median(samples) * 1000
        added50 = p50 - statistics.median(base_samples) * 1000
        added99 = _quantile_ms(samples, 0.99) - _quantile_ms(base_samples, 0.99)
        share = 100 * row.result.requests_per_s / base.result.requests_per_s
        count = len(samples) + row.result.errors
        cpu = f"{row.cpu_s * 1000 / count:.2f}" if row.cpu_s is not None and count else "-"
        mode = "stream (first chunk)" if row.stream else "json"
        added = "-" if row.target == "direct" else f"{added50:+.2f}"
        added_tail = "-" if row.target == "direct" else f"{added99:+.2f}"
        lines.append(
            f"| {row.delay_ms} ms | {mode} | {row.concurrency} | {row.target} | "
            f"{row.result.requests_per_s:,.0f} | {share:.0f}% | {p50:.2f} | {added} | {added_tail} | "
            f"{cpu} | {row.result.errors} |"
        )
    return "\n".join(lines)


def run() -> None:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        data = Path(tmp)
        key = _make_key(data)
        upstream_port, floor_port, api_port = free_port(), free_port(), free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        env = {
            **os.environ,
            "FTM_DATA_DIR": str(data),
            "FTM_LOCAL_PROVIDER_BASE_URL": upstream,
            "FTM_REDIS_URL": _redis_url(),
            "FTM_LOG_LEVEL": "WARNING",
            "BENCH_UPSTREAM": upstream,
            **LIMITS,
        }
        compare = os.environ.get("BENCH_PROXY_COMPARE") == "1"
        stack.enter_context(_process(["-m", "bench.upstream", str(upstream_port)], env, upstream_port))
        floor_pid = stack.enter_context(
            _process(
                [
                    "-m",
                    "uvicorn",
                    "bench.floor:app",
                    "--port",
                    str(floor_port),
                    "--workers",
                    str(workers),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env,
                floor_port,
            )
        )
        api_pid = stack.enter_context(
            _process(
                ["-m", "service.cli", "api", "--port", str(api_port), "--workers", str(workers)],
                env,
                api_port,
            )
        )
        api = f"http://127.0.0.1:{api_port}/v1"
        created = httpx.post(
            f"{api}/deployments",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": DEPLOYMENT, "targets": [{"model": MODEL}]},
            timeout=30,
        )
        created.raise_for_status()
        auth_header = {"Authorization": f"Bearer {key}"}
        targets = [
            Target(
                "direct", f"{upstream}/chat/completions", MODEL, {"Authorization": "Bearer sk-bench"}, None
            ),
            Target("floor", f"http://127.0.0.1:{floor_port}/v1/chat/completions", MODEL, {}, floor_pid),
            Target("ftm", f"{api}/chat/completions", DEPLOYMENT, auth_header, api_pid),
        ]
        if compare:  # the same database, so the same key and deployment
            fastapi_port = free_port()
            fastapi_pid = stack.enter_context(
                _process(
                    ["-m", "service.cli", "api", "--port", str(fastapi_port), "--workers", str(workers)],
                    {**env, "FTM_LEAN_PROXY": "false"},
                    fastapi_port,
                )
            )
            url = f"http://127.0.0.1:{fastapi_port}/v1/chat/completions"
            targets.append(Target("ftm, FastAPI path", url, DEPLOYMENT, auth_header, fastapi_pid))
        rows = uvloop.run(_measure(targets))
        idle = _idle_cpu_ms_per_s(targets)
    print(
        f"workers per server: {workers}; upstream: raw asyncio + httptools; load: raw asyncio, keep-alive; "
        "ftm with a deployment, usage and limits on"
    )
    print(_table(rows))
    print(
        "CPU with no requests (ms per second, all processes of the server): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in idle.items())
    )
