"""What a probe is: a pure planner of model calls and a pure computer of one result model.

A probe never talks to a model, a database or the clock. The services run its plan through the
workers, turn the replies into bundle records with the probe's reader, and hand the analysis a
bundle; the probe computes its versioned result from that bundle alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from auditor.schemas.probe import ProbeResult

if TYPE_CHECKING:  # the shapes only; importing them at run time would not cycle either
    from auditor.schemas.bundle import Bundle
    from auditor.schemas.columns import BundleColumns
    from auditor.schemas.result import AnalysisSettings

__all__ = ["Probe", "ProbeContext"]


@dataclass(frozen=True, init=False)
class ProbeContext:
    """Everything a probe may read to compute its result.

    ``bundle`` may be given as a function that builds the record form: it is then called only
    when a probe reads ``bundle`` (the record form of a large bundle costs seconds; probes that
    compute on ``columns`` never pay for it).
    """

    settings: AnalysisSettings
    rng: np.random.Generator
    """Seeded from settings.seed and the probe's name, so probes do not share a stream."""
    columns: BundleColumns | None
    """The same bundle as columns, when the caller holds them (a probe that computes on
    columns uses them instead of converting ``bundle`` again)."""

    def __init__(
        self,
        bundle: Bundle | Callable[[], Bundle],
        settings: AnalysisSettings,
        rng: np.random.Generator,
        columns: BundleColumns | None = None,
    ) -> None:
        object.__setattr__(self, "_records", bundle)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "rng", rng)
        object.__setattr__(self, "columns", columns)

    @property
    def bundle(self) -> Bundle:
        """The bundle as records (built on first use when given as a function)."""
        records = self._records  # type: ignore[attr-defined]
        if callable(records):
            records = records()
            object.__setattr__(self, "_records", records)
        return records

    @property
    def source(self) -> Bundle | BundleColumns:
        """The columns when the caller holds them, else the records: for probes that read only
        what both forms carry alike (``models``, ``items``, ``comparisons``, ``labels``)."""
        return self.columns if self.columns is not None else self.bundle


class Probe(Protocol):
    """The interface every registered probe implements."""

    name: ClassVar[str]
    """Key of the probe in the registry and in ``report.json["probes"]``."""
    title: ClassVar[str]
    """Human title of the report section."""
    result_model: ClassVar[type[ProbeResult]]

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        """None when the bundle (records or columns) holds what the probe needs, else why not
        ("no comparisons")."""
        ...

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """The model calls the probe needs for an audit spec (pure). The call shape is defined
        by the services' planner (`auditor.schemas.calls`)."""
        ...

    def compute(self, context: ProbeContext) -> ProbeResult:
        """The probe's result from the bundle alone (pure, deterministic given the rng)."""
        ...
