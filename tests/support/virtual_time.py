"""Virtual time for the rate limiter's unit tests: calls in two simulated worker processes that
share one bucket store, paced by the limiter, with processes that stall (are frozen for a while
and then wake every caller whose wake-up fell inside the stall at once, as a process the
machine did not schedule does). Nothing sleeps in real time."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Stall = tuple[float, float]  # [start, end): a process that runs nothing in between


class VirtualTime:
    """A discrete-event clock: seconds move from one wake-up to the next, never while a caller
    runs (so callers woken together also act at the same instant, as a burst)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = 0

    def __call__(self) -> float:
        return self.now

    def sleeper(self, stalls: Sequence[Stall] = ()) -> Callable[[float], Awaitable[None]]:
        """``asyncio.sleep`` of a process frozen during ``stalls``: a wake-up that falls
        inside one happens at its end."""

        async def sleep(seconds: float) -> None:
            at = self.now + max(seconds, 0.0)
            for start, end in stalls:
                if start <= at < end:
                    at = end
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._timers, (at, self._order, future))
            self._order += 1
            await future

        return sleep

    async def run(self, callers: Sequence[Awaitable[None]]) -> None:
        """Run ``callers`` to the end, waking the sleepers in the order of their wake-ups."""
        tasks = [asyncio.ensure_future(c) for c in callers]
        while True:
            # let every woken caller run until it sleeps again or finishes
            for _ in range(1000):
                running = sum(not t.done() for t in tasks)
                if running == len(self._timers):
                    break
                await asyncio.sleep(0)
            else:
                raise RuntimeError("a caller waits on something other than virtual time")
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if not self._timers:
                return
            at, _, future = heapq.heappop(self._timers)
            self.now = at
            future.set_result(None)


@dataclass
class ProviderBucket:
    """The provider's rule, written out independently of workers/: a token bucket of
    ``capacity`` refilled at ``rate`` per second, full at the start; a request that finds less
    than it carries (one request, or its ``amounts``: tokens) is rejected (429) and takes
    nothing."""

    rate: float
    capacity: float
    rejected: list[float] = field(default_factory=list)

    def replay(self, sends: Sequence[float], amounts: Sequence[float] | None = None) -> list[float]:
        level, last = self.capacity, 0.0
        carried = [1.0] * len(sends) if amounts is None else amounts
        for at, amount in sorted(zip(sends, carried, strict=True)):
            level = min(self.capacity, level + (at - last) * self.rate)
            last = at
            if level >= amount - 1e-9:
                level -= amount
            else:
                self.rejected.append(at)
        return self.rejected


def most_in_window(sends: Sequence[float], seconds: float) -> int:
    """The most sends within any window of ``seconds`` (closed at both ends)."""
    ordered = sorted(sends)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] < at - seconds - 1e-12:
            first += 1
        most = max(most, last - first + 1)
    return most
