"""`python -m sdoc_model.train`: train one variant with the `adapter:`/`training:` of a YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdoc_model.base_models.prepare import BaseModelError
from sdoc_model.train.config import TRAINED_VARIANTS, load_run_config
from sdoc_model.train.distributed import DistributedRunError
from sdoc_model.train.loop import NonFiniteLossError, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sdoc_model.train", description=__doc__)
    parser.add_argument("--variant", required=True, help=f"one of {', '.join(TRAINED_VARIANTS)}")
    parser.add_argument("--base-model", type=Path, required=True, help="prepared base model folder")
    parser.add_argument("--train-file", type=Path, required=True, help="normalised JSONL")
    parser.add_argument(
        "--model-dir", type=Path, required=True, help="where the final adapter goes"
    )
    parser.add_argument(
        "--log-dir", type=Path, required=True, help="metrics.jsonl and summary.json"
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, required=True, help="step-NNNNNN checkpoints"
    )
    parser.add_argument(
        "--config", type=Path, required=True, help="YAML with adapter:, training: and seed"
    )
    parser.add_argument("--model-name", help="name in the summary (default: the variant)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override training.KEY or adapter.KEY (a bare KEY is training.KEY); repeatable",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        adapter, training = load_run_config(args.config, args.set)
        train(
            args.variant, args.base_model, args.train_file, args.model_dir, args.log_dir,
            args.checkpoint_dir, adapter=adapter, training=training, model_name=args.model_name,
        )  # fmt: skip
    except (
        ValueError,
        FileNotFoundError,
        BaseModelError,
        NonFiniteLossError,
        DistributedRunError,
    ) as err:
        raise SystemExit(f"error: {err}") from err
