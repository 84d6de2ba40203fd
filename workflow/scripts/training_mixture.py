"""Build the training mixture, check it against every evaluation set, drop leaked rows."""

import logging
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from sdoc_model.data.leakage import check_leakage
from sdoc_model.data.mixture import MixtureInput, build_mixture

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

inputs = [
    MixtureInput(path, cap)
    for path, cap in zip(snakemake.input.train, snakemake.params.caps, strict=True)
]
mixture = Path(snakemake.output.mixture)
full = mixture.with_name(f"{mixture.stem}.before_leakage_check.jsonl")
logging.info("%s", asdict(build_mixture(inputs, full, seed=snakemake.params.seed)))

leakage = snakemake.params.leakage
report = check_leakage(
    full,
    snakemake.input.eval,
    snakemake.output.leakage,
    snakemake.output.leakage_md,
    threshold=leakage["threshold"],
    drop_to=mixture if leakage["drop_leaked"] else None,
    min_kept=snakemake.params.one_step,
)
if not leakage["drop_leaked"]:
    shutil.copyfile(full, mixture)
logging.info("training rows matching an evaluation question: %d", report["training_rows_leaked"])
