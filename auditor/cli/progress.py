"""What `auditor run` and `auditor demo` show while an audit runs: the stage in plain words, the
calls of each kind against their planned totals, the percentage, the rate and an ETA, and the
cost (labelled simulated when every model is simulated).

`progress_lines` is pure (a status and a clock reading in, text out), so it is tested without a
terminal; `watch` polls the store and draws it (a live panel on a terminal, a line every few
seconds in a log).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["KIND_LABELS", "STAGE_LABELS", "ProgressClock", "format_duration", "progress_lines"]

STAGE_LABELS = {
    "new": "starting: loading the model client and planning the calls",
    "collect": "collecting: the models answer the benchmark items",
    "judge": "judging: each judge grades the candidates' answers",
    "analyze": "analyzing: partial correlations, bootstrap and permutation tests",
    "done": "done",
}
"""The audit's stages in plain words (an unknown stage is shown by its name)."""

KIND_LABELS = {
    "mcq": "multiple-choice answers (accuracy and CAPA)",
    "answer": "free-form answers for the judges to grade",
    "judge": "verdicts: a judge grades one answer",
    "compare": "pairwise comparisons (bias battery)",
    "grade": "grader verdicts (reliability)",
}
"""What each kind of model call is for."""

_KIND_ORDER = ("mcq", "answer", "judge", "compare", "grade")
_ETA_AFTER_CALLS = 20
"""No ETA before this many calls are done since the first progress (the rate is noise)."""


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``"1 min 15 s"``; ``9.6`` -> ``"10 s"``; ``3725`` -> ``"1 h 2 min"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class ProgressClock:
    """When the first call was answered and how many were done then, for the rate and ETA
    (start-up and planning time do not count against the rate)."""

    started: float
    first_at: float | None = None
    first_done: int = 0
    stage_since: dict[str, float] = field(default_factory=dict)

    def observe(self, done: int, stage: str, now: float) -> None:
        if self.first_at is None and done > 0:
            self.first_at, self.first_done = now, done
        self.stage_since.setdefault(stage, now)


def _counts(
    status: Any, planned: Mapping[str, int], *, final: bool = False
) -> dict[str, tuple[int, int, int]]:
    """kind -> (finished, failed, total); the total is the larger of the plan and what the
    store holds (the plan is known before the calls of a kind are created). Once the audit is
    over (``final``) the total is what the store holds: the plan's judging counts are upper
    bounds, and a call never created was never needed."""
    kinds = [k for k in _KIND_ORDER if k in status.progress or k in planned]
    kinds += sorted(set(status.progress) - set(kinds))
    counts = {}
    for kind in kinds:
        progress = status.progress.get(kind)
        done = progress.done if progress else 0
        failed = progress.failed if progress else 0
        pending = progress.pending if progress else 0
        stored = done + failed + pending
        counts[kind] = (
            done + failed,
            failed,
            stored if final else max(planned.get(kind, 0), stored),
        )
    if final:
        counts = {kind: c for kind, c in counts.items() if c[2]}
    return counts


def progress_lines(
    status: Any,
    planned: Mapping[str, int],
    clock: ProgressClock,
    now: float,
    *,
    simulated: bool,
) -> list[str]:
    """The progress display: a headline (stage, percentage, rate, ETA, cost), then one line per
    kind of call with what it is for."""
    final = status.stage == "done"
    counts = _counts(status, planned, final=final)
    finished = sum(c[0] for c in counts.values())
    total = sum(c[2] for c in counts.values())
    clock.observe(finished, status.stage, now)
    facts = []
    if status.stage == "analyze":
        since = clock.stage_since.get("analyze", now)
        facts.append(
            f"all {finished:,} calls answered; analyzing for {format_duration(now - since)}"
        )
    elif total:
        facts.append(f"{finished:,} of {total:,} calls ({100 * finished / total:.0f}%)")
        first_at = clock.first_at
        running = first_at is not None and finished - clock.first_done >= _ETA_AFTER_CALLS
        if first_at is not None and running and finished < total and status.stage != "done":
            rate = (finished - clock.first_done) / max(now - first_at, 1e-9)
            facts.append(f"{rate:,.0f} calls/s")
            facts.append(f"about {format_duration((total - finished) / rate)} left")
    facts.append(f"elapsed {format_duration(now - clock.started)}")
    cost = f"${status.cost_usd:.4f}"
    facts.append(f"simulated cost {cost} (not billed)" if simulated else f"cost {cost}")
    unneeded = sum(planned.values()) - total
    if final and unneeded > 0:
        facts.append(f"{unneeded:,} planned calls not needed (the plan assumed every answer)")
    lines = [STAGE_LABELS.get(status.stage, status.stage), "  " + " · ".join(facts)]
    width = max((len(f"{c[2]:,}") for c in counts.values()), default=1)
    for kind, (done, failed, kind_total) in counts.items():
        share = f"{100 * done / kind_total:3.0f}%" if kind_total else "  —"
        lines.append(
            f"  {kind:<8} {done:>{width},}/{kind_total:<{width},} {share}  "
            f"{KIND_LABELS.get(kind, '')}" + (f"  ({failed:,} failed)" if failed else "")
        )
    return lines


def watch(
    read_status: Callable[[], Any],
    *,
    planned: Mapping[str, int],
    simulated: bool,
    console: Console,
    done: threading.Event | None,
    terminal_statuses: frozenset[str] | set[str] | tuple[str, ...],
    interval: float = 0.5,
    log_every: float = 5.0,
) -> Any:
    """Poll ``read_status`` until the audit ends (or ``done`` is set) and show its progress;
    returns the last status. The first progress is drawn at once."""
    clock = ProgressClock(started=time.monotonic())
    last_logged = -log_every
    shown = ""

    def draw(spinner: Any | None) -> Any:
        nonlocal last_logged, shown
        status = read_status()
        now = time.monotonic()
        lines = progress_lines(status, planned, clock, now, simulated=simulated)
        text = "\n".join(lines)
        if spinner is not None:
            spinner.update(Text(text))
        elif text != shown and now - last_logged >= log_every:
            console.print(f"{lines[0]}: {lines[1].strip()}", markup=False, highlight=False)
            last_logged, shown = now, text
        return status

    def finished(status: Any) -> bool:
        return status.status in terminal_statuses or (done is not None and done.is_set())

    if console.is_terminal:
        with console.status(Text("starting…")) as spinner:
            while not finished(draw(spinner)):
                time.sleep(interval)
    else:
        while not finished(draw(None)):
            time.sleep(interval)
    final = read_status()
    lines = progress_lines(final, planned, clock, time.monotonic(), simulated=simulated)
    for line in lines:
        console.print(line, markup=False, highlight=False)
    return final
