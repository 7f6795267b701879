"""Streaming upload of a large evaluation to a real API server: rows per second and peak memory.

The client generates the JSONL body on the fly (httpx sends a generator, chunked) and the
server (`auditor serve` in a subprocess, a fresh one per run) validates and stores it in
chunks inside one transaction. The server's peak resident size is read from
/proc/<pid>/status (VmHWM) after the upload; runs of two sizes show whether it grows.

    python bench/bench_upload.py                       # PostgreSQL, 250 x 4,000 and 250 x 1,000
    python bench/bench_upload.py --db sqlite --models 250 --items 4000
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.services.keys import create_key  # noqa: E402
from auditor.storage.store import Store  # noqa: E402
from tests.support.services import ServiceProcess, postgres_database, service_env  # noqa: E402

N_OPTIONS = 4
LINES_PER_PIECE = 2_000
DISTINCT_VECTORS = 4_096


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def jsonl_body(n_models: int, n_items: int, seed: int = 0) -> Iterator[bytes]:
    """The evaluation as JSONL pieces: header, items, models, then every model's outputs.

    Probabilities are thousandths (exact in decimal, so they sum to 1 within the bundle's
    tolerance), drawn from a pool of random vectors so that formatting does not dominate.
    """
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(1000, [1 / N_OPTIONS] * N_OPTIONS, size=DISTINCT_VECTORS)
    vectors = ["[" + ",".join(str(c / 1000) for c in row) + "]" for row in counts]
    yield b'{"kind":"header","schema_version":"1.0"}\n'
    lines = [
        f'{{"kind":"item","id":"i{x:06d}","question":"Question {x}?",'
        f'"options":["a","b","c","d"],"gold":{x % N_OPTIONS}}}\n'
        for x in range(n_items)
    ]
    yield "".join(lines).encode()
    yield "".join(
        f'{{"kind":"model","name":"m{m:04d}","family":"f{m % 10}"}}\n' for m in range(n_models)
    ).encode()
    picks = rng.integers(0, DISTINCT_VECTORS, size=n_items * n_models)
    piece: list[str] = []
    row = 0
    for m in range(n_models):
        model = f"m{m:04d}"
        for x in range(n_items):
            piece.append(
                f'{{"kind":"output","model":"{model}","item":"i{x:06d}",'
                f'"probs":{vectors[picks[row]]}}}\n'
            )
            row += 1
            if len(piece) == LINES_PER_PIECE:
                yield "".join(piece).encode()
                piece = []
    if piece:
        yield "".join(piece).encode()


def run(database_url: str, n_models: int, n_items: int) -> dict[str, float]:
    store = Store(database_url)
    store.migrate()
    _, key = create_key(store, tenant="bench")
    store.engine.dispose()
    port = _free_port()
    env = service_env(database_url, "redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/15")
    server = ServiceProcess(
        [sys.executable, "-m", "auditor.cli", "serve", "--port", str(port)],
        env,
        ready_marker="Application startup complete",
        name="bench-api",
    )
    with server:
        assert server.process is not None
        pid = server.process.pid
        before = _memory_kib(pid)
        bytes_sent = 0

        def counted() -> Iterator[bytes]:
            nonlocal bytes_sent
            for piece in jsonl_body(n_models, n_items):
                bytes_sent += len(piece)
                yield piece

        started = time.perf_counter()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/evaluations:stream?name=bench",
            content=counted(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
            timeout=None,
        )
        elapsed = time.perf_counter() - started
        after = _memory_kib(pid)
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:2000]}")
    stored = response.json()
    n_outputs = n_models * n_items
    if stored["n_outputs"] != n_outputs or stored["n_items"] != n_items:
        raise RuntimeError(f"stored counts differ: {stored}")
    rows = n_items + n_models + n_outputs
    return {
        "outputs": n_outputs,
        "rows": rows,
        "megabytes": bytes_sent / 1e6,
        "seconds": elapsed,
        "rows_per_second": rows / elapsed,
        "rss_start_mib": before["VmRSS"] / 1024,
        "peak_rss_mib": after["VmHWM"] / 1024,
    }


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgres":
        with postgres_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.sqlite'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--models", type=int, default=250)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument(
        "--smaller", type=int, default=4, help="Also run an upload this many times smaller."
    )
    args = parser.parse_args()
    sizes = [(args.models, args.items)]
    if args.smaller > 1:
        sizes.insert(0, (args.models, args.items // args.smaller))
    print(f"database: {args.db}; server: auditor serve (uvicorn, 1 process); body generated")
    print(
        f"{'outputs':>10} {'MB sent':>8} {'seconds':>8} {'rows/s':>9} {'RSS start':>10} "
        f"{'peak RSS':>9}"
    )
    for n_models, n_items in sizes:
        with database(args.db) as url:
            result = run(url, n_models, n_items)
        print(
            f"{result['outputs']:>10,} {result['megabytes']:>8.1f} {result['seconds']:>8.1f} "
            f"{result['rows_per_second']:>9,.0f} {result['rss_start_mib']:>7.0f} MiB "
            f"{result['peak_rss_mib']:>5.0f} MiB"
        )


if __name__ == "__main__":
    main()
