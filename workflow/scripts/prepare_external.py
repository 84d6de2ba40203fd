"""Prepare an external baseline: link a hub model's snapshot at its pinned commit (downloading
it once), or build a tiny stand-in (the paper rehearsal) with its own modeling code when it
opts into remote code."""

import logging
import sys
import zlib
from pathlib import Path

from sdoc_model.base_models.prepare import corpus_texts, prepare_hub_model, prepare_tiny_model
from sdoc_model.hub_lock import pinned_commit, profile_lock

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

spec = snakemake.params.spec
out = snakemake.output[0]
if spec.local:
    # Weights of its own: a seed from the name, not the base model's.
    seed = snakemake.params.seed + zlib.crc32(spec.name.encode())
    texts = corpus_texts([Path(p) for p in snakemake.input.texts])
    prepare_tiny_model(out, texts, seed=seed, remote_code=spec.trust_remote_code)
else:
    lock = profile_lock(snakemake.config["profile"])
    prepare_hub_model(out, spec.model_id, pinned_commit(spec.model_id, spec.revision, lock))
