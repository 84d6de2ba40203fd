"""``sdoc prepare-model``: write a base model folder, offline (see sdoc_model.cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdoc_model.base_models.prepare import BASE_MODEL_KINDS, prepare_base_model


def prepare_model(args: argparse.Namespace) -> None:
    prepare_base_model(
        args.kind, args.out, text_files=args.texts, vocab_size=args.vocab_size, seed=args.seed,
        model_id=args.model_id, revision=args.revision,
    )  # fmt: skip
    print(f"prepared {args.kind} base model in {args.out}")


def add_prepare_model(commands) -> None:
    prep = commands.add_parser("prepare-model", help="prepare a base model folder offline")
    prep.add_argument("--kind", choices=BASE_MODEL_KINDS, required=True)
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--texts", type=Path, nargs="*", default=[], help="tiny: tokenizer corpus")
    prep.add_argument("--vocab-size", type=int, default=2048, help="tiny: tokenizer vocabulary")
    prep.add_argument("--seed", type=int, default=0, help="tiny: weight initialisation seed")
    prep.add_argument("--model-id", help="hub: model id, e.g. Qwen/Qwen2.5-7B-Instruct")
    prep.add_argument("--revision", help="hub: commit or tag")
    prep.set_defaults(run=prepare_model)
