"""The ``sdoc`` command: ``sdoc prepare-model`` writes a base model folder, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdoc_model.base_models.prepare import BASE_MODEL_KINDS, prepare_base_model
from sdoc_model.utils.cli import exit_on_error


def prepare_model(args: argparse.Namespace) -> None:
    prepare_base_model(
        args.kind, args.out, text_files=args.texts, vocab_size=args.vocab_size, seed=args.seed,
        model_id=args.model_id, revision=args.revision,
    )  # fmt: skip
    print(f"prepared {args.kind} base model in {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdoc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    prep = commands.add_parser("prepare-model", help="prepare a base model folder offline")
    prep.add_argument("--kind", choices=BASE_MODEL_KINDS, required=True)
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--texts", type=Path, nargs="*", default=[], help="tiny: tokenizer corpus")
    prep.add_argument("--vocab-size", type=int, default=2048, help="tiny: tokenizer vocabulary")
    prep.add_argument("--seed", type=int, default=0, help="tiny: weight initialisation seed")
    prep.add_argument("--model-id", help="hub: model id, e.g. Qwen/Qwen2.5-7B-Instruct")
    prep.add_argument("--revision", help="hub: commit or tag")
    prep.set_defaults(run=prepare_model)
    return parser


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
