"""Real services for tests: a Redis database, a fresh PostgreSQL database, worker processes.

Nothing here is mocked: the broker is the local Redis (127.0.0.1:6379), PostgreSQL is the local
server (127.0.0.1:5432, trust auth), and a worker is a real `auditor worker` subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Redis databases 0 and 1 are the defaults of a deployment; tests take 8..15.
_TEST_REDIS_DBS = range(8, 16)


def redis_available() -> bool:
    try:
        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1).ping())
    except redis.RedisError:
        return False


_CLAIM_KEY = "auditor-test:claimed"


def _claim_database_pair() -> int:
    """Claim a free pair of test databases (atomically, so concurrent test runs never share
    one); returns the slot."""
    deadline = time.monotonic() + 600
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    while time.monotonic() < deadline:
        for slot in range(len(_TEST_REDIS_DBS) // 2):
            client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=_TEST_REDIS_DBS[2 * slot])
            if client.set(_CLAIM_KEY, token, nx=True, ex=1800):
                return slot
        time.sleep(0.5)
    raise RuntimeError("no free pair of test Redis databases for 10 minutes")


@contextlib.contextmanager
def redis_databases() -> Iterator[tuple[str, str]]:
    """A (broker URL, result backend URL) pair on empty Redis databases that no other test
    process uses at the same time; emptied after."""
    slot = _claim_database_pair()
    broker_db, backend_db = _TEST_REDIS_DBS[2 * slot], _TEST_REDIS_DBS[2 * slot + 1]
    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=backend_db).flushdb()
    broker = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=broker_db)
    for key in broker.scan_iter():
        if key != _CLAIM_KEY.encode():
            broker.delete(key)
    urls = (
        f"redis://{REDIS_HOST}:{REDIS_PORT}/{broker_db}",
        f"redis://{REDIS_HOST}:{REDIS_PORT}/{backend_db}",
    )
    try:
        yield urls
    finally:
        for db in (broker_db, backend_db):
            with contextlib.suppress(redis.RedisError):
                redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


def lose_broker_messages(broker_url: str) -> None:
    """Empty a broker database as a Redis restart would, keeping the test's claim on it (a
    plain FLUSHDB would free the database for another test process while this one uses it)."""
    broker = redis.Redis.from_url(broker_url)
    for key in broker.scan_iter():
        if key != _CLAIM_KEY.encode():
            broker.delete(key)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    import sqlalchemy

    name = f"auditor_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def service_env(database_url: str, broker_url: str, backend_url: str, **extra: str) -> dict:
    """Environment for a worker, beat or API process of a test."""
    env = dict(os.environ)
    env.update(
        AUDITOR_DATABASE_URL=database_url,
        AUDITOR_BROKER_URL=broker_url,
        AUDITOR_RESULT_BACKEND=backend_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class ServiceProcess:
    """A real subprocess (worker, beat or API server) whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict, ready_marker: str, name: str) -> None:
        self.args = args
        self.env = env
        self.ready_marker = ready_marker
        self.log_path = Path(tempfile.mkstemp(prefix=f"auditor-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_marker in self.log():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.args} not ready after {timeout} s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool children)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServiceProcess:
        # `with process.start(timeout=...)` has started it already: a second start would leak
        # the first process (it outlived its test and kept a worker on a dead port)
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_process(env: dict, *, concurrency: int = 2) -> ServiceProcess:
    """An `auditor worker` subprocess (Celery prefork pool) on the env's broker."""
    args = [
        sys.executable,
        "-m",
        "auditor.cli",
        "worker",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
    ]
    return ServiceProcess(args, env, ready_marker="ready.", name="worker")


def beat_process(env: dict, schedule_dir: Path) -> ServiceProcess:
    env = dict(env, AUDITOR_BEAT_SCHEDULE=str(schedule_dir / "celerybeat-schedule"))
    args = [sys.executable, "-m", "auditor.cli", "beat", "--loglevel=INFO"]
    return ServiceProcess(args, env, ready_marker="beat: Starting", name="beat")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((REDIS_HOST, 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A Redis server of one test's own, on a free port (never the shared 6379), so the test
    may stop and restart it without disturbing anyone else's broker."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://{REDIS_HOST}:{self.port}"

    def _client(self) -> redis.Redis:
        return redis.Redis(host=REDIS_HOST, port=self.port, socket_timeout=1)

    def available(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisServer:
        subprocess.run(
            [
                "redis-server",
                *("--daemonize", "yes", "--bind", REDIS_HOST, "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.available():
            time.sleep(0.05)
        if not self.available():
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._client().shutdown(nosave=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.available():
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop the server and start it again on the same port (it keeps nothing on disk)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
