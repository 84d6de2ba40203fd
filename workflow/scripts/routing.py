"""Route labelled test questions through one mixture-of-experts model and count, per adapted
layer, the experts each discipline's tokens go to (sdoc_model.eval.routing)."""

import logging
import sys
from pathlib import Path

import torch

from sdoc_model.eval.routing import probe_model, write_probe
from sdoc_model.eval.runner import resolve_dtype

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
torch.set_num_threads(snakemake.threads)

params = snakemake.params
record = probe_model(
    Path(snakemake.input.model),
    dict(zip(params.datasets, map(Path, snakemake.input.data), strict=True)),
    per_discipline=params.questions,
    dtype=resolve_dtype(params.dtype),
)
logging.info("probed %s", {name: entry["questions"] for name, entry in record["datasets"].items()})
write_probe(Path(snakemake.output[0]), {"model": snakemake.wildcards.model} | record)
