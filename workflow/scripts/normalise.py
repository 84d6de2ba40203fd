"""Normalise one registered dataset into the project's JSONL schema."""

import logging
import sys
from dataclasses import asdict

from sdoc_model.data.normalise import normalise_dataset

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

report = normalise_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.raw,
    snakemake.output[0],
    strict=snakemake.params.strict,
)
logging.info("%s", asdict(report))
