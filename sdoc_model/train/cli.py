"""`python -m sdoc_model.train`: train one variant with the `adapter:`/`training:` of a YAML
config."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdoc_model.train.config import TRAINED_VARIANTS, load_run_config
from sdoc_model.train.loop import train
from sdoc_model.utils.cli import exit_on_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sdoc_model.train", description=__doc__)
    add = parser.add_argument
    add("--variant", required=True, help=f"one of {', '.join(TRAINED_VARIANTS)}")
    add("--base-model", type=Path, required=True, help="prepared base model folder")
    add("--train-file", type=Path, required=True, help="normalised JSONL")
    add("--model-dir", type=Path, required=True, help="where the final adapter goes")
    add("--log-dir", type=Path, required=True, help="metrics.jsonl and summary.json")
    add("--checkpoint-dir", type=Path, required=True, help="step-NNNNNN checkpoints")
    add(
        "--config",
        type=Path,
        required=True,
        help="YAML with adapter:, training: and seeds (the first is used)",
    )
    add("--model-name", help="name in the summary (default: the variant)")
    add(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override training.KEY or adapter.KEY (a bare KEY is training.KEY); repeatable",
    )  # fmt: skip
    return parser


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    adapter, training = load_run_config(args.config, args.set)
    train(
        args.variant, args.base_model, args.train_file, args.model_dir, args.log_dir,
        args.checkpoint_dir, adapter=adapter, training=training, model_name=args.model_name,
    )  # fmt: skip
