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

from auditor.schemas.bundle import Bundle, ResponseMatrix, response_matrix
from auditor.schemas.columns import BundleColumns, response_matrix_from_columns
from auditor.schemas.probe import ProbeResult
from auditor.stats.similarity import SimilarityMatrix, capa_matrix

if TYPE_CHECKING:  # the shape only; importing it at run time would not cycle either
    from auditor.schemas.result import AnalysisSettings

__all__ = ["Probe", "ProbeContext", "SharedArrays"]


class SharedArrays:
    """The arrays several probes compute from the same bundle, computed once per analysis and
    read by each probe from `ProbeContext.arrays`: the response matrix of a list of models
    (`auditor.schemas.columns.response_matrix_from_columns`, or
    `auditor.schemas.bundle.response_matrix` for records) and its CAPA matrix
    (`auditor.stats.similarity.capa_matrix`). On a bundle of 1,000 models x 12,000 items x 10
    options each costs seconds (the CAPA matrix is one 1,000 x 120,000 matrix product).

    The arrays of one list of models are kept, the latest asked for: a response matrix that is
    not a view of the columns can be as large as the probabilities, and two are never held at
    once. They are read-only (numpy raises on a write), as every probe receives the same ones.
    """

    def __init__(self, bundle: Bundle | BundleColumns | Callable[[], Bundle]) -> None:
        self._bundle = bundle
        self._models: tuple[str, ...] | None = None
        self._responses: ResponseMatrix | None = None
        self._capa: SimilarityMatrix | None = None

    def responses(self, models: Sequence[str]) -> ResponseMatrix:
        """The response matrix of ``models`` (rows in that order), under the primary template."""
        key = tuple(models)
        if self._models != key or self._responses is None:
            self._models, self._responses, self._capa = None, None, None  # free before building
            bundle = self._bundle() if callable(self._bundle) else self._bundle
            matrix = (
                response_matrix_from_columns(bundle, key)
                if isinstance(bundle, BundleColumns)
                else response_matrix(bundle, key)
            )
            for array in (
                matrix.offsets,
                matrix.gold,
                matrix.probs,
                matrix.choice,
                matrix.present,
                matrix.probabilistic,
            ):
                array.flags.writeable = False
            self._models, self._responses = key, matrix
        return self._responses

    def capa(self, models: Sequence[str]) -> SimilarityMatrix:
        """The CAPA matrix of ``models`` (`capa_matrix` of `responses`)."""
        responses = self.responses(models)
        if self._capa is None:
            capa = capa_matrix(responses)
            for array in (capa.values, capa.reasons, capa.probabilistic, capa.n_items):
                array.flags.writeable = False
            self._capa = capa
        return self._capa


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
    arrays: SharedArrays
    """The response and CAPA matrices, shared by the probes of one analysis (a context made
    alone gets its own, computed on first use)."""

    def __init__(
        self,
        bundle: Bundle | Callable[[], Bundle],
        settings: AnalysisSettings,
        rng: np.random.Generator,
        columns: BundleColumns | None = None,
        arrays: SharedArrays | None = None,
    ) -> None:
        object.__setattr__(self, "_records", bundle)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "rng", rng)
        object.__setattr__(self, "columns", columns)
        if arrays is None:
            arrays = SharedArrays(columns if columns is not None else lambda: self.bundle)
        object.__setattr__(self, "arrays", arrays)

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
