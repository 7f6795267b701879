"""Importers: other tools' evaluation logs turned into a validated evaluation bundle.

One module per source, all from local files only (no network):

* `auditor.importers.lm_eval`: EleutherAI lm-evaluation-harness ``--log_samples`` output;
* `auditor.importers.inspect`: UK AISI Inspect logs, ``.json`` and the zipped ``.eval`` format;
* `auditor.importers.helm`: Stanford CRFM HELM run directories;
* `auditor.importers.tables`: tables as people export them (CSV, JSONL, Parquet);
* `auditor.importers.merge`: several bundles into one, conflicts reported by record;
* `auditor.importers.pairwise`: pairwise comparisons made elsewhere.

Every importer collects every problem it finds, located by file, line or sample and field, and
returns a bundle only once `validate_bundle` accepts it; otherwise it raises `BundleError`. A
problem found by `validate_bundle` is prefixed with the source of the record it concerns. What
is left out on purpose (a generative lm-eval task, a sample whose answer cannot be read, a judge
reply that cannot be parsed) is counted by reason in `ImportResult.notes`, never dropped
silently, and `ImportResult.report()` says what was read.
"""

from auditor.importers.common import ImportResult
from auditor.importers.helm import import_helm
from auditor.importers.inspect import INSPECT_MODEL_GRADED_SCORERS, import_inspect
from auditor.importers.lm_eval import import_lm_eval
from auditor.importers.merge import merge_bundles
from auditor.importers.tables import TABLE_COLUMNS, import_table

__all__ = [
    "INSPECT_MODEL_GRADED_SCORERS",
    "TABLE_COLUMNS",
    "ImportResult",
    "import_helm",
    "import_inspect",
    "import_lm_eval",
    "import_table",
    "merge_bundles",
]
