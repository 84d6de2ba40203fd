"""Prepare the profile's base model folder (tiny, SmolLM2 from its GGUF, or a hub model)."""

import logging
import sys
from pathlib import Path

from sdoc_model.base_models.prepare import prepare_base_model
from sdoc_model.hub_lock import pinned_commit, profile_lock

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

spec = snakemake.params.spec
revision = spec.get("revision")
if spec["kind"] == "hub":  # at its pinned commit, resolved once into the lock file
    revision = pinned_commit(spec["model_id"], revision, profile_lock(snakemake.config["profile"]))
prepare_base_model(
    spec["kind"],
    snakemake.output[0],
    text_files=[Path(p) for p in snakemake.input.texts],
    vocab_size=spec.get("vocab_size"),
    seed=snakemake.params.seed,
    model_id=spec.get("model_id"),
    revision=revision,
)
