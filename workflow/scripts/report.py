"""Tables, figures and REPORT.md, with the sha256 of every raw data file the profile used (as
received: a file pinned by a Hugging Face commit has no sha256 in the registry)."""

import logging
import sys

from sdoc_model.data.download import sha256_file
from sdoc_model.data.sources import DATASETS
from sdoc_model.report.build import build_report

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

# By the file's path in the registry (and the mirror), wherever the profile keeps its raw files.
sources = {source.path for spec in DATASETS.values() for source in spec.sources}
checksums = {
    next(name for name in sources if path.endswith(f"/{name}")): sha256_file(path)
    for path in snakemake.input.raw
}
build_report(snakemake.config, snakemake.params.results, checksums, snakemake.params.benchmarks)
