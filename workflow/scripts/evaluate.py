"""Evaluate one model on every task of the profile with lm-eval: one model load, a result file
and per-question records per task."""

import dataclasses
import logging
import sys
from pathlib import Path

import torch

# In a model's own environment (config: external.<name>.environment) this package is not
# installed: it comes from the checkout, which Snakemake's script preamble puts on sys.path
# after the environment's own packages (the workflow's folders are on its search path).
from sdoc_model.eval.runner import check_adapter_files, evaluate_tasks, model_args
from sdoc_model.hub_lock import pinned_commit, profile_lock

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
torch.set_num_threads(snakemake.threads)

evaluation = snakemake.params.evaluation
spec = snakemake.params.spec
if spec.kind == "external" and not spec.local:  # at its pinned commit, from the lock file
    lock = profile_lock(snakemake.config["profile"])
    spec = dataclasses.replace(spec, revision=pinned_commit(spec.model_id, spec.revision, lock))
args = model_args(
    spec,
    Path(snakemake.input.get("base_model", "")),
    Path(snakemake.input.get("model", "")),
    evaluation["dtype"],
)
logging.info("model_args: %s", args)
if snakemake.input.get("model"):
    check_adapter_files(Path(snakemake.input.model))
evaluate_tasks(
    args,
    dict(zip(snakemake.params.tasks, map(Path, snakemake.output.results), strict=True)),
    data_dir=Path(snakemake.params.data_dir),
    num_fewshot=evaluation["num_fewshot"],
    limit=evaluation["limit"],
    batch_size=evaluation["batch_size"],
    seed=snakemake.params.seed,
    chat_template=spec.chat_template,
)
