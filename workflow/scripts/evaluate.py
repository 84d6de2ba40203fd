"""Evaluate one model on every task of the profile with lm-eval: one model load, a result file
and per-question records per task."""

import logging
import sys
from pathlib import Path

import torch

from sdoc_model.eval.runner import check_adapter_files, evaluate_tasks, model_args

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
torch.set_num_threads(snakemake.threads)

evaluation = snakemake.params.evaluation
args = model_args(
    snakemake.params.spec,
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
)
