"""An OpenAI-compatible chat server for tests: a real HTTP process on a free 127.0.0.1 port.

It answers ``POST /v1/chat/completions`` (and ``GET /v1/models``) the way small real chat
models behind llama.cpp's or vLLM's server do, so the service's one litellm seam is exercised
over real HTTP rather than through a mock:

- judge replies in the forms real chat models use: ``"1"``, ``"1."``, ``"**1**"``,
  ``"The answer is correct. 1"``, an explanation first, or text that names no verdict;
- ``logprobs`` with ``top_logprobs`` for the first token when asked (a graded verdict: the
  probability of "1" is ``confidence`` when the stub thinks the answer right);
- multiple-choice replies whose first-token distribution puts only ``letter_mass`` on the
  option letters (the rest on tokens such as ``" The"`` and a lowercase ``"a"``); the reply
  text is the likeliest first token, or with ``reply_letter`` the likeliest letter;
- a 401 whose message quotes the bearer key it was sent, as OpenAI's does;
- transient faults on demand: 429 with ``retry-after``, 500/503, and requests that hang past
  the client's timeout; either at a random ``rate`` (seeded) or for the first ``fail_first``
  attempts of every distinct request;
- a served ``model`` name different from the requested one (as llama.cpp reports its file);
- a fixed ``latency`` (seconds per reply, per model or for all);
- a model that always answers one ``error`` (``{"status": 500, "message": "Missing
  credentials"}``, as a proxy in front of a provider does when it holds no key), or does so
  once it has served ``error_after`` requests (a key revoked mid-audit).

Configuration is one JSON file (see `StubConfig`); every request is appended to the JSON-lines
``log`` with what was asked and answered, never the key itself (only a short hash of it).

Run: ``python -m tests.stubs.openai_server CONFIG.json`` prints ``listening on <url>`` once the
port is bound. From a test, use `stub_server(config)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["StubServer", "judge_truth", "stub_server"]

JUDGE_STYLES = ("bare", "period", "bold", "sentence", "explain_first", "unreadable")
"""How a judge model words its verdict (v is 0 or 1):
bare "v"; period "v."; bold "**v**"; sentence "The answer is correct. v" (or incorrect);
explain_first "Let me check. The candidate says X. ... Verdict: v"; unreadable "I am not sure."
"""

_ANSWER_START = "<<<ANSWER>>>"
_ANSWER_END = "<<<END OF ANSWER>>>"


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def judge_truth(config: dict[str, Any], question: str, answer: str) -> int:
    """What the stub's judges believe: 1 if the answer equals the configured truth of the
    question (``truths`` maps a question to its correct answer; case and punctuation are
    ignored), else 0. Tests use this to know the verdict each call should get."""
    truth = config.get("truths", {}).get(question)
    return int(truth is not None and _normal(answer) == _normal(truth))


def _question_and_answer(user: str) -> tuple[str, str]:
    match = re.search(r"Question: (.*?)\n", user)
    question = match.group(1).strip() if match else ""
    start, end = user.find(_ANSWER_START), user.find(_ANSWER_END)
    answer = user[start + len(_ANSWER_START) : end].strip() if 0 <= start < end else ""
    return question, answer


def _judge_text(style: str, verdict: int, answer: str) -> str:
    word = "correct" if verdict else "incorrect"
    if style == "bare":
        return str(verdict)
    if style == "period":
        return f"{verdict}."
    if style == "bold":
        return f"**{verdict}**"
    if style == "sentence":
        return f"The answer is {word}. {verdict}"
    if style == "explain_first":
        return (
            f"Let me check. The candidate says {answer[:40]!r}, which I compare with what I "
            f"know about the question. The answer is {word}.\n\nVerdict: {verdict}"
        )
    if style == "unreadable":
        return "I am not sure how to grade this."
    raise ValueError(f"style: unknown judge style {style!r}; known: {JUDGE_STYLES}")


def _tokens(text: str) -> list[str]:
    """A rough tokenization (words, digits, punctuation runs, with their leading space)."""
    return re.findall(r"\s*(?:\*\*|[A-Za-z]+|\d|[^\sA-Za-z\d])", text) or [text]


def _entry(token: str, probability: float) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": math.log(probability),
        "bytes": list(token.encode()),
    }


def _judge_logprobs(text: str, verdict: int, confidence: float, k: int) -> list[dict[str, Any]]:
    """First-token log-probabilities: a reply that starts with the digit puts ``confidence``
    (or 1 - confidence) on "1" and most of the rest on "0"; a reply that starts with a word
    puts little mass on the digits."""
    first = _tokens(text)[0]
    p_one = confidence if verdict else 1.0 - confidence
    if first.strip() in ("0", "1"):
        top = [("1", 0.97 * p_one), ("0", 0.97 * (1 - p_one)), (" The", 0.02), ("**", 0.01)]
    else:
        top = [(first, 0.9), ("1", 0.02 * p_one + 0.001), ("0", 0.02 * (1 - p_one) + 0.001)]
        top.append(("I", 0.05))
    top = sorted(top, key=lambda entry: -entry[1])[:k]
    chosen = dict(top).get(first, 0.5)
    return [{**_entry(first, chosen), "top_logprobs": [_entry(t, p) for t, p in top]}]


def _mcq(
    model: str, user: str, behaviour: dict[str, Any], k: int
) -> tuple[str, list[dict[str, Any]]]:
    options = re.findall(r"^([A-Z])\. ", user, flags=re.MULTILINE)
    n = max(len(options), 1)
    seed = int(hashlib.sha256(f"{model}\x1f{user}".encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    weights = [rng.random() + 0.05 for _ in range(n)]
    mass = float(behaviour.get("letter_mass", 0.95))
    letters = [
        (options[i] if options else "A", mass * w / sum(weights)) for i, w in enumerate(weights)
    ]
    rest = 1.0 - mass
    top = [*letters, (" The", rest * 0.5), ("a", rest * 0.3), ("\n", rest * 0.2)]
    top = [t for t in top if t[1] > 0]
    top = sorted(top, key=lambda entry: -entry[1])[:k]
    first = top[0][0]
    text = first if first.strip() else "The answer is " + letters[0][0]
    if behaviour.get("reply_letter"):  # a sampled reply that names the likeliest letter
        text = max(letters, key=lambda entry: entry[1])[0]
    return text, [{**_entry(first, top[0][1]), "top_logprobs": [_entry(t, p) for t, p in top]}]


class _State:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.lock = threading.Lock()
        faults = config.get("faults", {})
        self.random = random.Random(faults.get("seed", 0))
        self.attempts: dict[str, int] = {}
        self.served: dict[str, int] = {}
        self.log_path = config.get("log")

    def log(self, record: dict[str, Any]) -> None:
        if not self.log_path:
            return
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the JSON-lines log records what matters

    def _send(
        self, status: int, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            models = list(self.server.state.config.get("models", {}))
            self._send(
                200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}
            )
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        state = self.server.state
        config = state.config
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        auth = self.headers.get("Authorization")
        model = str(request.get("model", ""))
        messages = request.get("messages", [])
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
        record: dict[str, Any] = {
            "model": model,
            "request": digest,
            "auth": None if auth is None else hashlib.sha256(auth.encode()).hexdigest()[:12],
            "logprobs": bool(request.get("logprobs")),
            "at": time.time(),
        }
        expected = config.get("api_key")
        if expected is not None and auth != f"Bearer {expected}":
            sent = (auth or "").removeprefix("Bearer ")
            record["status"] = 401
            state.log(record)
            self._send(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: Bearer {sent}. You can find "
                        "your API key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        behaviours = config.get("models", {})
        if model not in behaviours:
            record["status"] = 404
            state.log(record)
            self._send(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
            return
        fixed = behaviours[model].get("error")
        if fixed is not None and behaviours[model].get("error_after"):
            with state.lock:  # the error starts after this many requests (a key revoked)
                served = state.served[model] = state.served.get(model, 0) + 1
            if served <= int(behaviours[model]["error_after"]):
                fixed = None
        if fixed is not None:  # a model that answers this error (status, message)
            record["status"] = int(fixed["status"])
            state.log(record)
            self._send(
                int(fixed["status"]),
                {"error": {"message": str(fixed["message"]), "type": "server_error"}},
            )
            return
        fault = self._fault(state, digest)
        if fault is not None:
            record["status"] = fault
            state.log(record)
            if fault == "timeout":
                time.sleep(float(config.get("faults", {}).get("hang_seconds", 30)))
                with contextlib.suppress(OSError):
                    self._send(504, {"error": {"message": "gateway timeout", "type": "timeout"}})
                return
            if fault == 429:
                retry_after = str(config.get("faults", {}).get("retry_after", 0))
                self._send(
                    429,
                    {"error": {"message": "Rate limit reached, slow down", "type": "requests"}},
                    {"retry-after": retry_after},
                )
            else:
                self._send(
                    fault, {"error": {"message": "The server had an error", "type": "server_error"}}
                )
            return
        behaviour = behaviours[model]
        time.sleep(float(behaviour.get("latency", config.get("latency", 0.0))))
        k = int(request.get("top_logprobs") or 1)
        logprobs = None
        if "multiple-choice question" in user:
            text, content = _mcq(model, user, behaviour, k)
            kind = "mcq"
            if request.get("logprobs") and behaviour.get("logprobs", True):
                logprobs = content
        elif _ANSWER_START in user:
            kind = "judge"
            question, answer = _question_and_answer(user)
            verdict = judge_truth(config, question, answer)
            style = behaviour.get("style", "bare")
            text = _judge_text(style, verdict, answer)
            if request.get("logprobs") and behaviour.get("logprobs", True):
                logprobs = _judge_logprobs(
                    text, verdict, float(behaviour.get("confidence", 0.9)), k
                )
            record["verdict"] = verdict
        else:
            kind = "answer"
            match = re.search(r"Question: (.*)", user)
            question = match.group(1).strip() if match else ""
            answers = behaviour.get("answers", {})
            text = answers.get(question, behaviour.get("answer", "Paris"))
        max_tokens = request.get("max_tokens")
        finish = "stop"
        tokens = _tokens(text)
        if isinstance(max_tokens, int) and len(tokens) > max_tokens:
            text, finish = "".join(tokens[:max_tokens]), "length"
        record.update(status=200, kind=kind, text=text)
        state.log(record)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
            "logprobs": {"content": logprobs} if logprobs is not None else None,
        }
        prompt_tokens = max(1, len(json.dumps(messages)) // 4)
        completion_tokens = len(_tokens(text))
        self._send(
            200,
            {
                "id": f"chatcmpl-{digest}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": config.get("served_model", model),
                "choices": [choice],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    @staticmethod
    def _fault(state: _State, digest: str) -> int | str | None:
        faults = state.config.get("faults", {})
        kinds = faults.get("kinds", [429, 500, 503])
        with state.lock:
            attempt = state.attempts[digest] = state.attempts.get(digest, 0) + 1
            if attempt <= int(faults.get("fail_first", 0)):
                return kinds[(attempt - 1) % len(kinds)]
            rate = float(faults.get("rate", 0.0))
            if rate and state.random.random() < rate:
                return state.random.choice(kinds)
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


def serve(config: dict[str, Any], port: int = 0) -> None:
    server = _Server(("127.0.0.1", port), _Handler)
    server.state = _State(config)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


class StubServer:
    """A running stub server process; ``url`` is its OpenAI API base (``.../v1``)."""

    def __init__(self, process: subprocess.Popen[str], base: str, config_path: Path) -> None:
        self.process = process
        self.base = base
        self.url = base + "/v1"
        self.config_path = config_path

    @property
    def log_path(self) -> Path | None:
        config = json.loads(self.config_path.read_text())
        return Path(config["log"]) if config.get("log") else None

    def requests(self) -> list[dict[str, Any]]:
        """Every request the server received, in order (its JSON-lines log)."""
        path = self.log_path
        if path is None or not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def stub_server(config: dict[str, Any], directory: Path) -> Iterator[StubServer]:
    """Start the stub server with ``config`` (its log goes to ``directory`` unless set)."""
    config = {"log": str(directory / "stub-requests.jsonl"), **config}
    config_path = directory / f"stub-config-{os.getpid()}-{time.monotonic_ns()}.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stubs.openai_server", str(config_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if match is None:
        process.kill()
        raise RuntimeError(f"the stub server did not start: {line!r}")
    server = StubServer(process, match.group(1), config_path)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    serve(json.loads(Path(sys.argv[1]).read_text()), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
