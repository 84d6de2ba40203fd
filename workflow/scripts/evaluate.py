"""Evaluate one (model, task) with lm-eval and this project's tasks."""

import logging
import sys
from pathlib import Path

import torch

from sdoc_model.eval.runner import check_adapter_files, evaluate, model_args

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
torch.set_num_threads(snakemake.threads)

evaluation = snakemake.params.evaluation
task = snakemake.wildcards.task
args = model_args(
    snakemake.params.spec,
    Path(snakemake.input.get("base_model", "")),
    Path(snakemake.input.get("model", "")),
    evaluation["dtype"],
)
logging.info("model_args: %s", args)
if snakemake.input.get("model"):
    check_adapter_files(Path(snakemake.input.model))
evaluate(
    args,
    task,
    data_dir=Path(snakemake.params.data_dir),
    out_path=Path(snakemake.output[0]),
    num_fewshot=evaluation["num_fewshot"].get(task),
    limit=evaluation["limit"],
    batch_size=evaluation["batch_size"],
    seed=snakemake.params.seed,
)
