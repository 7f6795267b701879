"""Inspect AI runs behind the fixtures in inspect/ (run by make_fixtures.sh, offline).

The evaluated model is Inspect's `mockllm/model` with fixed outputs, one per sample in order
(max_samples=1 keeps the order); the graders are the stub OpenAI-compatible server
(`openai-api/local/judge-*`, base URL from LOCAL_BASE_URL), which serves each judge under a
different name than the one the run asked for.

Usage: python inspect_runs.py LOG_DIR
"""

from __future__ import annotations

import sys

from inspect_ai import Task, eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ModelOutput, _model, _tokens, get_model
from inspect_ai.scorer import choice, model_graded_qa
from inspect_ai.solver import generate, multiple_choice


def offline_token_count(text: str) -> int:
    """Inspect counts tokens with tiktoken's o200k_base, which it downloads on first use; offline
    we estimate (4 characters a token). Only the logged token usage depends on it."""
    return max(1, len(text) // 4)


_tokens.count_text_tokens = offline_token_count
_model.count_text_tokens = offline_token_count

# (id, question, choices, target letter, free-form target)
QUESTIONS = [
    ("q1", "What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], "B", "Paris"),
    ("q2", "What is 2 + 2?", ["4", "3", "5", "22"], "A", "4"),
    ("q3", "What colour is a clear daytime sky?", ["green", "red", "blue", "yellow"], "C", "blue"),
    ("q4", "Which planet is largest?", ["Mars", "Venus", "Earth", "Jupiter"], "D", "Jupiter"),
    ("q5", "What do bees make?", ["honey", "silk", "wax paper", "milk"], "A", "honey"),
    ("q6", "How many legs has a spider?", ["six", "ten", "eight", "four"], "C", "eight"),
]
# The mock model's answer letters (q1..q6): three right, three wrong.
ANSWERS = ["B", "A", "A", "B", "A", "D"]
# The mock model's free-form answers (q1..q6).
FREE_FORM = ["Paris", "5", "blue", "Saturn", "honey", "six"]


def mc_dataset() -> MemoryDataset:
    return MemoryDataset(
        [Sample(id=i, input=q, choices=c, target=t) for i, q, c, t, _ in QUESTIONS],
        name="tiny_mc",
    )


def open_dataset() -> MemoryDataset:
    return MemoryDataset(
        [Sample(id=i, input=q, target=f) for i, q, _, _, f in QUESTIONS], name="tiny_open"
    )


def mock(contents: list[str], name: str = "mockllm/model"):
    return get_model(
        name,
        custom_outputs=[ModelOutput.from_content(model=name, content=c) for c in contents],
    )


def main(log_dir: str) -> None:
    common = {"log_dir": log_dir, "max_samples": 1, "display": "none"}

    # 1. multiple choice, answered with letters (.eval, zstd members)
    eval(
        Task(dataset=mc_dataset(), solver=multiple_choice(), scorer=choice(), name="mc"),
        model=mock([f"ANSWER: {a}" for a in ANSWERS]),
        **common,
    )
    # 1b. the same run as a .json log
    eval(
        Task(dataset=mc_dataset(), solver=multiple_choice(), scorer=choice(), name="mc_json"),
        model=mock([f"ANSWER: {a}" for a in ANSWERS[:3]]),
        log_format="json",
        limit=3,
        **common,
    )
    # 2. another model's run with shuffled choices (the dataset's shuffle_choices): same ids,
    # the options in another order; it answers the same options as the first model
    shuffled = mc_dataset()
    shuffled.shuffle_choices(seed=3)
    letters = []
    for (_, _, options, _, _), answer in zip(QUESTIONS, ANSWERS, strict=True):
        text = options[ord(answer) - ord("A")]
        sample_options = next(
            s.choices
            for s in shuffled
            if s.choices and text in s.choices and sorted(s.choices) == sorted(options)
        )
        letters.append(chr(ord("A") + sample_options.index(text)))
    eval(
        Task(dataset=shuffled, solver=multiple_choice(), scorer=choice(), name="mc_shuffled"),
        model=mock([f"ANSWER: {a}" for a in letters], name="mockllm/shuffled"),
        **common,
    )
    # 3. no answer letters: mockllm's default reply
    eval(
        Task(dataset=mc_dataset(), solver=multiple_choice(), scorer=choice(), name="mc_noletter"),
        model="mockllm/model",
        **common,
    )
    # 4. free form, two graders named by string
    eval(
        Task(
            dataset=open_dataset(),
            solver=generate(),
            scorer=[
                model_graded_qa(model="openai-api/local/judge-a"),
                model_graded_qa(model="openai-api/local/judge-b"),
            ],
            name="open_two_graders",
        ),
        model=mock(FREE_FORM),
        **common,
    )
    # 5. free form, the grader from the run's model roles
    eval(
        Task(dataset=open_dataset(), solver=generate(), scorer=model_graded_qa(), name="open_role"),
        model=mock(FREE_FORM),
        model_roles={"grader": "openai-api/local/judge-c"},
        **common,
    )


if __name__ == "__main__":
    main(sys.argv[1])
