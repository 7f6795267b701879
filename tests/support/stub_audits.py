"""Items with known answers for audits against the OpenAI-compatible stub server
(tests/stubs/openai_server.py): the stub's judges grade by ``TRUTHS``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["QUESTIONS", "TRUTHS", "bundle_file"]

QUESTIONS = {
    "q1": ("What is the capital of France?", ["Paris", "Lyon", "Nice", "Lille"], 0),
    "q2": ("What is 2 + 2?", ["3", "4", "5", "22"], 1),
    "q3": ("Which planet is called the red planet?", ["Venus", "Mars", "Jupiter", "Moon"], 1),
    "q4": ("What colour is a clear daytime sky?", ["Green", "Red", "Blue", "Black"], 2),
    "q5": ("How many legs has a spider?", ["Six", "Eight", "Ten", "Four"], 1),
}
"""item id -> (question, options, gold index)."""

TRUTHS = {question: options[gold] for question, options, gold in QUESTIONS.values()}
"""question -> its correct answer (the stub's `truths`)."""


def bundle_file(path: Path, models: list[str]) -> Path:
    """A bundle of `QUESTIONS` with these model records (none is fine) written to ``path``."""
    document = {
        "items": [
            {"id": item_id, "question": q, "options": options, "gold": gold}
            for item_id, (q, options, gold) in QUESTIONS.items()
        ],
        "models": [{"name": m} for m in models],
    }
    path.write_text(json.dumps(document))
    return path
