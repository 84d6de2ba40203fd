"""Prepare the profile's base model folder (tiny, SmolLM2 from its GGUF, or a hub model)."""

import logging
import sys
from pathlib import Path

from sdoc_model.base_models.prepare import corpus_texts, prepare_base_model

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

spec = dict(snakemake.params.spec)
kind = spec.pop("kind")
if kind == "tiny":
    options = {
        "texts": corpus_texts([Path(p) for p in snakemake.input.texts]),
        "vocab_size": spec["vocab_size"],
        "seed": snakemake.params.seed,
    }
elif kind == "hub":
    options = {"model_id": spec["model_id"], "revision": spec.get("revision")}
else:
    options = {}
prepare_base_model(kind, snakemake.output[0], **options)
