"""Tables, figures and REPORT.md, with the sha256 of every raw data file the profile used."""

import logging
import sys

from sdoc_model.data.sources import dataset
from sdoc_model.report.build import build_report

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

checksums = {s.path: s.sha256 for name in snakemake.params.datasets for s in dataset(name).sources}
build_report(snakemake.config, snakemake.params.results, checksums)
