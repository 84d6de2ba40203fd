"""Results reporting: tables, figures, provenance and REPORT.md for one profile.

    python -m sdoc_model.report --config config/ci.yaml [--results results/ci] [--checksums FILE]

or, from the Snakemake rule's script, ``build_report(config, results_dir, checksums,
benchmark_files)``.
``ReportPlan.from_config(config, results_dir)`` lists every input it reads and output it writes.
"""

from sdoc_model.report.build import build_report
from sdoc_model.report.inputs import MissingInputError
from sdoc_model.report.plan import ReportPlan
from sdoc_model.utils.provenance import gather_provenance, load_checksums, write_provenance

__all__ = [
    "MissingInputError",
    "ReportPlan",
    "build_report",
    "gather_provenance",
    "load_checksums",
    "write_provenance",
]
