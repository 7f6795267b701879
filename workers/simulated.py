"""Simulated models: a litellm custom provider (``sim/<model>``) backed by an `Ecosystem`.

Calls go through litellm exactly like calls to a real provider; the handler reads the prompt
the way a model would (which question, which answer), and answers from the ecosystem's planted
truth. The world is chosen by ``api_base = sim://<world id>`` (see
`auditor.services.planning.simulation_api_base`); a worker registers the worlds of the audits it
runs. Latency and faults (rate limits, 5xx, timeouts, connection resets, auth failures, garbage
replies) are injected per `auditor.schemas.spec.SimulatedProvider`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import time
from typing import Any

import litellm
from litellm import CustomLLM, ModelResponse

from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.prompts import (
    ANSWER_DELIMITER,
    BUILTIN_JUDGE_TEMPLATES,
    judge_messages,
    mcq_messages,
    option_letter,
)
from auditor.schemas.spec import SimulatedProvider

__all__ = ["PROVIDER", "SimulatedLLM", "register", "register_world"]

PROVIDER = "sim"
PRICE_PER_TOKEN = (1e-7, 4e-7)
"""(input, output) USD per token charged by simulated models, so budgets can be exercised."""
_GARBAGE = ("I cannot determine that.", "Yes", "correct!", "The answer seems right to me.", "")

_worlds: dict[str, Ecosystem] = {}
_behaviour: dict[str, SimulatedProvider] = {}
_lock = threading.Lock()


def register_world(
    api_base: str, config: EcosystemConfig, behaviour: SimulatedProvider | None = None
) -> None:
    """Make ``sim://<world id>`` answer from the ecosystem of ``config``."""
    with _lock:
        if api_base not in _worlds:
            world = _worlds[api_base] = Ecosystem(config)
            _register_prices(world.model_names)
        _behaviour[api_base] = behaviour or SimulatedProvider()
    register()


def _register_prices(models: tuple[str, ...]) -> None:
    """Price simulated models in litellm's cost map, so litellm reports their cost."""
    entry = {
        "input_cost_per_token": PRICE_PER_TOKEN[0],
        "output_cost_per_token": PRICE_PER_TOKEN[1],
        "litellm_provider": PROVIDER,
        "mode": "chat",
    }
    logger = logging.getLogger("LiteLLM")
    level = logger.level
    logger.setLevel(logging.ERROR)  # it warns that sim/* is not in its built-in map: expected
    try:
        litellm.register_model({f"{PROVIDER}/{name}": dict(entry) for name in models})
    finally:
        logger.setLevel(level)


def register() -> None:
    """Register the ``sim`` provider with litellm (idempotent)."""
    providers = litellm.custom_provider_map
    if not any(p.get("provider") == PROVIDER for p in providers):
        litellm.custom_provider_map = [
            *providers,
            {"provider": PROVIDER, "custom_handler": _HANDLER},
        ]
        litellm.utils.custom_llm_setup()


def _text_of(messages: list[dict[str, Any]]) -> tuple[str, str]:
    system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    return system, user


def _answer_block(user: str) -> str:
    start = user.find("<<<ANSWER>>>")
    end = user.find(ANSWER_DELIMITER)
    return user[start + len("<<<ANSWER>>>") : end] if 0 <= start < end else user


_PAIRWISE_BLOCKS = re.compile(
    r"<<<ANSWER A>>>\n(.*?)\n<<<END OF ANSWER A>>>.*?<<<ANSWER B>>>\n(.*?)\n<<<END OF ANSWER B>>>",
    re.DOTALL,
)
_NONCE = re.compile(r"\(Request id: ([^)]*)\)\s*$")


def _pairwise_reply(world: Ecosystem, model: str, item_id: str, user: str) -> str:
    """A simulated pairwise judge: both answer blocks and the nonce read back from the prompt."""
    blocks = _PAIRWISE_BLOCKS.search(user)
    if blocks is None:
        return "I cannot tell."
    nonce = _NONCE.search(user)
    return world.pairwise_winner(
        model, item_id, blocks.group(1), blocks.group(2), nonce.group(1) if nonce else None
    )


def _ledger(path: str, model: str, messages: list[dict[str, Any]]) -> None:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:24]
    # model, what was asked, which process asked, when (seconds since the epoch)
    line = f"{model}\t{digest}\t{os.getpid()}\t{time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines from many processes never interleave
    finally:
        os.close(fd)


def _fault(kind: str, model: str) -> Exception:
    full = f"{PROVIDER}/{model}"
    if kind == "rate_limit":
        return litellm.RateLimitError("simulated rate limit", llm_provider=PROVIDER, model=full)
    if kind == "server_error":
        return litellm.InternalServerError("simulated 500", llm_provider=PROVIDER, model=full)
    if kind == "timeout":
        return litellm.Timeout("simulated timeout", model=full, llm_provider=PROVIDER)
    return litellm.APIConnectionError(
        "simulated connection reset", llm_provider=PROVIDER, model=full
    )


def _residue(world: Ecosystem, item_id: str, user: str) -> str:
    """The prompt with the item's own text (question, options) and the answer block removed:
    what identifies the template."""
    item = world.items[world._item_index(item_id)]
    start, end = user.find("<<<ANSWER>>>"), user.find(ANSWER_DELIMITER)
    if 0 <= start < end:
        user = user[:start] + user[end:]
    for text in (item.question, *item.options):
        user = user.replace(text, "")
    return user


def _template_variant(world: Ecosystem, item_id: str, user: str, kind: str) -> str | None:
    """None when ``user`` was written from the audit's primary template (the built-in MCQ
    template, or the built-in `paper`/`reference` judge templates); otherwise a name of the
    variant template (a hash of its text), which the world uses to plant prompt sensitivity."""
    item = world.items[world._item_index(item_id)]
    if kind == "mcq":
        primaries = [mcq_messages(item.question, item.options)[-1]["content"]]
    else:
        primaries = [
            judge_messages(t, question=item.question, answer="", reference=item.options[item.gold])[
                -1
            ]["content"]
            for t in BUILTIN_JUDGE_TEMPLATES.values()
        ]
    residue = _residue(world, item_id, user)
    if any(residue == _residue(world, item_id, primary) for primary in primaries):
        return None
    return hashlib.sha256(residue.encode()).hexdigest()[:12]


_GRADE_FORMATS = ("{word}", "Grade: {word}", "{word} - graded against the reference.")


def _grade(world: Ecosystem, model: str, item_id: str, answer: str) -> str:
    """A grader's three-way reply from the planted truth: AVOIDANT when the answer names no
    option, else CORRECT or INCORRECT; each model has its own reply format."""
    option = world.option_in_text(item_id, answer)
    gold = world.items[world._item_index(item_id)].gold
    word = "AVOIDANT" if option is None else ("CORRECT" if option == gold else "INCORRECT")
    style = int(hashlib.md5(model.encode()).hexdigest(), 16) % len(_GRADE_FORMATS)
    return _GRADE_FORMATS[style].format(word=word)


# --- provider-side rate limits (429 with retry-after above rpm/tpm) -------------------------------

# KEYS[1] = bucket; ARGV = capacity, refill per second, amount, now. Returns "0" when served, else
# the seconds until the bucket can serve it. The same token bucket a real provider keeps per key,
# on one clock that never goes back: a request whose `now` is earlier than the last one (its
# process read the time, then was not scheduled while another process's request went first)
# arrives at the bucket's time, as it would at a real provider; set back, the bucket would refill
# the same seconds twice and serve more than its rate.
_PROVIDER_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or capacity
local last = tonumber(state[2]) or now
local at = math.max(last, now)
level = math.min(capacity, level + (at - last) * rate)
local wait = 0
if level >= amount then level = level - amount else wait = (amount - level) / rate end
redis.call('HSET', KEYS[1], 'level', level, 'at', at)
redis.call('EXPIRE', KEYS[1], 300)
return tostring(wait)
"""
_local_buckets: dict[str, tuple[float, float]] = {}
_redis_scripts: dict[str, Any] = {}


def _provider_wait(behaviour: SimulatedProvider, key: str, per_minute: int, amount: float) -> float:
    """Take ``amount`` from the provider's bucket ``key``; the seconds to wait if it cannot."""
    rate = per_minute / 60.0
    capacity = max(rate * behaviour.burst_seconds, 1.0)
    amount = min(amount, capacity)
    if behaviour.limit_url:
        script = _redis_scripts.get(behaviour.limit_url)
        if script is None:
            import redis

            client = redis.Redis.from_url(behaviour.limit_url)
            script = _redis_scripts[behaviour.limit_url] = client.register_script(_PROVIDER_TAKE)
        return float(
            script(keys=[f"simprovider:{key}"], args=[capacity, rate, amount, time.time()])
        )
    with _lock:
        now = time.monotonic()
        level, at = _local_buckets.get(key, (capacity, now))
        level = min(capacity, level + (now - at) * rate)
        wait = 0.0 if level >= amount else (amount - level) / rate
        _local_buckets[key] = (level - amount if wait == 0 else level, now)
        return wait


_redis_clients: dict[str, Any] = {}


def _count(behaviour: SimulatedProvider, api_base: str, outcome: str) -> None:
    """Served and rejected calls per world, in Redis when the limits are shared (benchmarks)."""
    if behaviour.limit_url:
        client = _redis_clients.get(behaviour.limit_url)
        if client is None:
            import redis

            client = _redis_clients[behaviour.limit_url] = redis.Redis.from_url(behaviour.limit_url)
        client.incr(f"simprovider:{api_base}:{outcome}")


def provider_counts(limit_url: str, api_base: str) -> dict[str, int]:
    """How many calls the shared-limit provider of ``api_base`` served and rejected."""
    import redis

    client = redis.Redis.from_url(limit_url)
    return {
        outcome: int(client.get(f"simprovider:{api_base}:{outcome}") or 0)
        for outcome in ("served", "rejected")
    }


def _enforce_limits(
    behaviour: SimulatedProvider, api_base: str, model: str, prompt_tokens: int
) -> None:
    """Answer 429 with ``retry-after`` when the provider's rpm or tpm bucket is empty."""
    if behaviour.rpm is None and behaviour.tpm is None:
        return
    waits = []
    if behaviour.rpm is not None:
        waits.append(_provider_wait(behaviour, f"{api_base}:rpm", behaviour.rpm, 1))
    if behaviour.tpm is not None:
        waits.append(_provider_wait(behaviour, f"{api_base}:tpm", behaviour.tpm, prompt_tokens))
    wait = max(waits)
    if wait <= 0:
        _count(behaviour, api_base, "served")
        return
    _count(behaviour, api_base, "rejected")
    import httpx

    response = httpx.Response(
        429,
        headers={"retry-after": f"{wait:.3f}"},
        request=httpx.Request("POST", f"{api_base}/chat/completions"),
    )
    raise litellm.RateLimitError(
        f"simulated 429: over the provider's limit; retry after {wait:.3f} s",
        llm_provider=PROVIDER,
        model=f"{PROVIDER}/{model}",
        response=response,
    )


class SimulatedLLM(CustomLLM):
    """The handler litellm calls for ``sim/...`` models."""

    def _respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str | None,
        optional_params: dict[str, Any],
    ) -> tuple[ModelResponse, float]:
        world = _worlds.get(api_base or "")
        behaviour = _behaviour.get(api_base or "", SimulatedProvider())
        if world is None:
            raise litellm.BadRequestError(
                f"no simulated world registered for api_base={api_base!r}",
                model=f"{PROVIDER}/{model}",
                llm_provider=PROVIDER,
            )
        if behaviour.ledger:
            _ledger(behaviour.ledger, model, messages)
        if model in behaviour.permanent_models:
            raise litellm.AuthenticationError(
                "simulated invalid API key", llm_provider=PROVIDER, model=f"{PROVIDER}/{model}"
            )
        if model not in world.family_of:
            raise litellm.NotFoundError(
                f"simulated model {model!r} does not exist",
                model=f"{PROVIDER}/{model}",
                llm_provider=PROVIDER,
            )
        if behaviour.transient_rate and random.random() < behaviour.transient_rate:
            raise _fault(random.choice(behaviour.transient_kinds), model)

        system, user = _text_of(messages)
        # Prompt tokens only: a provider decides before it generates (completion tokens of a
        # one-token answer are 1).
        _enforce_limits(behaviour, api_base or "", model, max(1, (len(system) + len(user)) // 4))
        item_id = world.item_for_question(user)
        logprobs = None
        if item_id is None:
            text = "I do not know."
        elif "multiple-choice question" in user:
            probs = world.mcq_probs(model, item_id, _template_variant(world, item_id, user, "mcq"))
            text = option_letter(int(probs.argmax()))
            if optional_params.get("logprobs") and model not in behaviour.discrete_models:
                logprobs = self._logprobs(model, text, probs, optional_params)
        elif "AVOIDANT" in system and "<<<ANSWER>>>" in user:  # the three-way grader
            text = _grade(world, model, item_id, _answer_block(user).strip())
        elif "<<<ANSWER A>>>" in user:
            if behaviour.garbage_rate and random.random() < behaviour.garbage_rate:
                text = random.choice(_GARBAGE)
            else:
                text = _pairwise_reply(world, model, item_id, user)
        elif "<<<ANSWER>>>" in user:
            if behaviour.garbage_rate and random.random() < behaviour.garbage_rate:
                text = random.choice(_GARBAGE)
            else:
                variant = _template_variant(world, item_id, user, "judge")
                text = str(world.verdict(model, item_id, _answer_block(user).strip(), variant))
        else:
            text = world.answer_text(model, item_id)
        prompt_tokens = max(1, (len(system) + len(user)) // 4)
        completion_tokens = max(1, len(text) // 4)
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        if logprobs is not None:
            choice["logprobs"] = logprobs
        response = ModelResponse(
            model=f"{PROVIDER}/{model}",
            choices=[choice],
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )
        # The cost stamped on the response, as litellm's own handlers do for providers that
        # report it: litellm then takes it as it is instead of looking the model up in its cost
        # map (twice per call, about a quarter of litellm's per-call time on this provider).
        response._hidden_params["response_cost"] = (
            prompt_tokens * PRICE_PER_TOKEN[0] + completion_tokens * PRICE_PER_TOKEN[1]
        )
        return response, behaviour.latency

    @staticmethod
    def _logprobs(model: str, text: str, probs: Any, optional_params: dict[str, Any]) -> dict:
        # Half the models tokenize letters with a leading space, as real tokenizers often do.
        space = " " if int(hashlib.md5(model.encode()).hexdigest(), 16) % 2 else ""
        top = sorted(range(len(probs)), key=lambda o: -probs[o])
        top = top[: int(optional_params.get("top_logprobs") or 5)]
        entries = [
            {
                "token": space + option_letter(o),
                "logprob": math.log(max(float(probs[o]), 1e-300)),
                "bytes": None,
            }
            for o in top
        ]
        return {
            "content": [
                {
                    "token": space + text,
                    "logprob": entries[0]["logprob"],
                    "bytes": None,
                    "top_logprobs": entries,
                }
            ]
        }

    def completion(
        self,
        model: str,
        messages: list,
        api_base: str,
        custom_prompt_dict: dict,
        model_response: ModelResponse,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        response, latency = self._respond(model, messages, api_base, optional_params)
        if latency:
            time.sleep(latency)
        return response

    async def acompletion(
        self,
        model: str,
        messages: list,
        api_base: str,
        custom_prompt_dict: dict,
        model_response: ModelResponse,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        response, latency = self._respond(model, messages, api_base, optional_params)
        if latency:
            await asyncio.sleep(latency)
        return response


_HANDLER = SimulatedLLM()
