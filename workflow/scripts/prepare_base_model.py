"""Prepare the profile's base model folder (tiny, SmolLM2 from its GGUF, or a hub model)."""

import logging
import sys
from pathlib import Path

from sdoc_model.base_models.prepare import prepare_base_model

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

spec = snakemake.params.spec
prepare_base_model(
    spec["kind"],
    snakemake.output[0],
    text_files=[Path(p) for p in snakemake.input.texts],
    vocab_size=spec.get("vocab_size"),
    seed=snakemake.params.seed,
    model_id=spec.get("model_id"),
    revision=spec.get("revision"),
)
