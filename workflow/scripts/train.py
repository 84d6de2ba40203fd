"""Train one model of the profile (a variant or a sweep point), resuming from its checkpoints."""

import logging
import os
import shutil
import sys
from pathlib import Path

from sdoc_model.profile import adapter_config
from sdoc_model.train.loop import train

# At the descriptor level, so the torchrun processes of a multi-process run log here too.
log = open(snakemake.log[0], "a", buffering=1)
for stream in (sys.stdout, sys.stderr):
    stream.flush()
    os.dup2(log.fileno(), stream.fileno())
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

spec = snakemake.params.spec
checkpoints = Path(snakemake.params.checkpoints)
# Metrics live beside the checkpoints while training, out of Snakemake's reach: it deletes the
# outputs of an interrupted job, and the resumed run must keep the lines before its checkpoint.
run_logs = checkpoints / "logs"
train(
    spec.variant,
    snakemake.input.base_model,
    snakemake.input.data,
    snakemake.output.model,
    run_logs,
    checkpoints,
    adapter=adapter_config(snakemake.config, spec),
    training={**snakemake.config["training"], "seed": spec.seed},
    model_name=spec.name,
    threads=snakemake.threads,
)
shutil.copyfile(run_logs / "summary.json", snakemake.output.summary)
shutil.copyfile(run_logs / "metrics.jsonl", snakemake.output.metrics)
