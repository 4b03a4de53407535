"""The development stack behind `make run` / `ftm dev`: one command, every process.

Development only: it lives outside `service/` and the production image, and what it needs beyond
the runtime (fakeredis) comes with the `dev` extra.

It uses the Redis at `FTM_REDIS_URL` when one answers, else starts an embedded one (a
`redis-server` on PATH, else fakeredis's TCP server in this process); migrates the SQLite store
under `FTM_DATA_DIR`; makes sure an admin API key exists; then runs the local provider, the API, a
Celery worker and beat as child processes, prints the URL and the key (a generated one; a key given
in FTM_BOOTSTRAP_API_KEY is never printed), and stops them all on Ctrl-C or SIGTERM (or when any
of them dies).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr

from service.auth.keys import generate_key
from service.bootstrap import ensure_bootstrap_key
from service.config import Settings
from service.db import make_engine, make_session_factory
from service.migrate import upgrade
from service.webhooks.signing import generate_secret

STOP_GRACE_S = 15.0
STOP_ORDER = ({"api", "beat"}, {"worker"})  # then the rest (the local provider)
RESTARTED = {"worker", "beat"}
MAX_RESTARTS = 5  # within RESTART_WINDOW_S; more means something is wrong for good
RESTART_WINDOW_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class EmbeddedRedis:
    """A Redis for the dev stack when none is reachable."""

    url: str
    stop: Callable[[], None]
    kind: str


def start_embedded_redis(data_dir: Path) -> EmbeddedRedis:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary:
        redis_dir = data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops Redis last
        )
        url = f"redis://127.0.0.1:{port}/0"
        _wait_for(lambda: redis_answers(url), "redis-server", 10)
        return EmbeddedRedis(url, lambda: _stop_process(process), "redis-server")
    try:
        from fakeredis import TcpFakeServer
        from fakeredis._clients._tcp_server import TCPFakeRequestHandler
    except ImportError as error:
        raise RuntimeError(
            "no Redis answers at FTM_REDIS_URL, no redis-server is on PATH, and fakeredis is not "
            "installed (it comes with the dev extra: pip install -r requirements-dev.lock)"
        ) from error

    # Each reply is its own write; without TCP_NODELAY every pipeline waits ~40 ms on Nagle.
    TCPFakeRequestHandler.disable_nagle_algorithm = True
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return EmbeddedRedis(f"redis://127.0.0.1:{port}/0", stop, "fakeredis")


def _wait_for(ready: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout_s:.0f} s")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


BOOTSTRAP_KEY_SHOWN = "(FTM_BOOTSTRAP_API_KEY)"


@dataclass(frozen=True)
class DevKey:
    """The dev stack's admin key, and whether the operator gave it (FTM_BOOTSTRAP_API_KEY)."""

    value: str
    from_env: bool

    @property
    def shown(self) -> str:
        """What `ftm dev` prints: a key it generated, never one it was given (that one lands in
        terminals and CI logs, and its owner already has it)."""
        return BOOTSTRAP_KEY_SHOWN if self.from_env else self.value


def dev_api_key(settings: Settings) -> DevKey:
    """The bootstrap key if set, else one generated once and kept in the data directory."""
    if settings.bootstrap_api_key is not None:
        return DevKey(settings.bootstrap_api_key.get_secret_value(), from_env=True)
    path = settings.data_dir / "dev-api-key"
    if path.exists():
        return DevKey(path.read_text().strip(), from_env=False)
    key = generate_key()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return DevKey(key, from_env=False)


def dev_credentials_key(settings: Settings) -> str:
    """FTM_CREDENTIALS_KEY if set, else a Fernet key generated once and kept in the data directory
    (tenants' provider keys stored by an earlier run stay readable)."""
    if settings.credentials_key is not None:
        return settings.credentials_key.get_secret_value()
    path = settings.data_dir / "dev-credentials-key"
    if path.exists():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


@dataclass(frozen=True)
class StackInfo:
    url: str
    key: DevKey
    redis: str


def banner(info: StackInfo, data_dir: Path) -> str:
    """What `ftm dev` prints once the stack answers (tests/e2e reads the `API key : <key>` line)."""
    return (
        "\nfinetune-manager is running\n"
        f"  API base URL : {info.url}\n"
        f"  API key      : {info.key.shown}   (platform admin, tenant 'default')\n"
        f"  Redis        : {info.redis}\n"
        f"  Data         : {data_dir.resolve()}\n"
        "Press Ctrl-C to stop.\n"
    )


@dataclass
class DevStack:
    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    embedded: EmbeddedRedis | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    _commands: dict[str, list[str]] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)
    _restarts: dict[str, list[float]] = field(default_factory=dict)

    def start(self) -> StackInfo:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        redis_url = settings.redis_url
        if not redis_answers(redis_url):
            self.embedded = start_embedded_redis(settings.data_dir)
            redis_url = self.embedded.url
        upgrade(settings.database_url)
        dev_key = dev_api_key(settings)
        key = dev_key.value
        settings = settings.model_copy(update={"bootstrap_api_key": SecretStr(key), "redis_url": redis_url})
        engine = make_engine(settings.database_url)
        ensure_bootstrap_key(settings, make_session_factory(engine))
        engine.dispose()

        emulator_url = f"http://127.0.0.1:{settings.local_provider_port}/v1"
        # The local provider tells the API when a job ends, as OpenAI does (a new secret each run).
        webhook_secret = os.environ.get("FTM_LOCAL_PROVIDER_WEBHOOK_SECRET") or generate_secret()
        env = {
            **os.environ,
            "FTM_REDIS_URL": redis_url,
            "FTM_DATABASE_URL": settings.database_url,
            "FTM_DATA_DIR": str(settings.data_dir),
            "FTM_BOOTSTRAP_API_KEY": key,
            "FTM_CREDENTIALS_KEY": dev_credentials_key(settings),
            "FTM_LOCAL_PROVIDER_BASE_URL": emulator_url,
            "FTM_LOCAL_PROVIDER_API_KEY": settings.local_provider_api_key.get_secret_value(),
            "FTM_EMULATOR_API_KEY": settings.local_provider_api_key.get_secret_value(),
            "FTM_EMULATOR_DATA_DIR": str(settings.data_dir / "emulator"),
            "FTM_LOCAL_PROVIDER_WEBHOOK_SECRET": webhook_secret,
            "FTM_EMULATOR_WEBHOOK_SECRET": webhook_secret,
            "FTM_EMULATOR_WEBHOOK_URL": f"http://127.0.0.1:{settings.port}/providers/local/webhooks",
            # The local provider trains in seconds; follow its jobs closely unless told otherwise.
            "FTM_JOB_REFRESH_INTERVAL_S": os.environ.get("FTM_JOB_REFRESH_INTERVAL_S", "2"),
        }
        python = sys.executable
        commands = {
            "emulator": [
                python,
                "-m",
                "service.cli",
                "emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.local_provider_port),
            ],
            "api": [
                python,
                "-m",
                "service.cli",
                "api",
                "--host",
                settings.host,
                "--port",
                str(settings.port),
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--concurrency",
                "2",
                "--queues",
                "maintenance,files,jobs,webhooks,evals",
                "--loglevel",
                settings.log_level,
                "--hostname",
                f"ftm-dev-{secrets.token_hex(3)}@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "beat",
                "--loglevel",
                settings.log_level,
                "--schedule",
                str(settings.data_dir / "celerybeat-schedule"),
            ],
        }
        self._commands, self._env = commands, env
        for name, command in commands.items():
            self.processes[name] = subprocess.Popen(command, env=env)
        api_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        base = f"http://{api_host}:{settings.port}"
        _wait_for(lambda: self._ready(f"{emulator_url}/models", key=None), "the local provider", 60)
        _wait_for(lambda: self._ready(f"{base}/readyz", key=None), "the API", 60)
        redis_kind = self.embedded.kind if self.embedded else "external"
        return StackInfo(url=f"{base}/v1", key=dev_key, redis=f"{redis_url} ({redis_kind})")

    def _ready(self, url: str, key: str | None) -> bool:
        self.raise_if_exited()
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def raise_if_exited(self) -> None:
        """Restart a worker or beat that exited (as compose's `restart: unless-stopped` does: a
        worker can die of a broker library's error when Redis goes away, and its work is in the
        database and Redis, so a new one carries on); the API or the local provider exiting ends
        the stack."""
        for name, process in list(self.processes.items()):
            if process.poll() is None or self.stopping.is_set():
                continue
            if name not in RESTARTED or not self._may_restart(name):
                raise RuntimeError(f"{name} exited with code {process.returncode}")
            print(f"dev stack: {name} exited with code {process.returncode}; restarting it", file=sys.stderr)
            self.processes[name] = subprocess.Popen(self._commands[name], env=self._env)

    def _may_restart(self, name: str) -> bool:
        now = time.monotonic()
        recent = [at for at in self._restarts.get(name, []) if now - at < RESTART_WINDOW_S]
        self._restarts[name] = [*recent, now]
        return len(recent) < MAX_RESTARTS

    def stop(self) -> None:
        """Stop in the order that leaves nothing half-done: first what starts work (the API and
        beat), then the worker (Celery's warm shutdown lets its running tasks finish, with the
        local provider and Redis still up; what does not finish in time stays unacknowledged and
        is delivered again), then the local provider and Redis."""
        self.stopping.set()
        # A second Ctrl-C or SIGTERM while stopping must not leave the later processes running.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        deadline = time.monotonic() + STOP_GRACE_S
        rest = set(self.processes).difference(*STOP_ORDER)
        for group in (*STOP_ORDER, rest):
            running = [p for name, p in self.processes.items() if name in group and p.poll() is None]
            for process in running:
                process.terminate()
            for process in running:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.embedded is not None:
            self.embedded.stop()


def run(settings: Settings) -> int:
    stack = DevStack(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(banner(stack.start(), settings.data_dir), flush=True)
        while True:
            stack.raise_if_exited()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    except RuntimeError as error:
        print(f"dev stack: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
