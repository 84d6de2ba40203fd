"""The ``sdoc`` command: the steps of the workflow, one subcommand each."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path


def corpus_texts(paths: list[Path]) -> Iterator[str]:
    """Text to train a tokenizer on: normalised JSONL rows (question, options) or plain lines."""
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if path.suffix != ".jsonl":
                    yield line
                    continue
                row = json.loads(line)
                yield "\n".join(
                    [row["question"], *row["options"].values(), row.get("explanation") or ""]
                )


def prepare_model(args: argparse.Namespace) -> None:
    from sdoc_model.base_models.prepare import (
        prepare_hub_model,
        prepare_smollm2,
        prepare_tiny_model,
    )

    if args.kind == "tiny":
        if not args.texts:
            raise SystemExit(
                "prepare-model --kind tiny needs --texts FILE... to train its tokenizer"
            )
        prepare_tiny_model(
            args.out, corpus_texts(args.texts), vocab_size=args.vocab_size, seed=args.seed
        )
    elif args.kind == "smollm2":
        prepare_smollm2(args.out)
    else:
        if not args.model_id:
            raise SystemExit("prepare-model --kind hub needs --model-id")
        prepare_hub_model(args.out, args.model_id, args.revision)
    print(f"prepared {args.kind} base model in {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdoc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    prep = commands.add_parser("prepare-model", help="prepare a base model folder offline")
    prep.add_argument("--kind", choices=["tiny", "smollm2", "hub"], required=True)
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--texts", type=Path, nargs="*", default=[], help="tiny: tokenizer corpus")
    prep.add_argument("--vocab-size", type=int, default=2048, help="tiny: tokenizer vocabulary")
    prep.add_argument("--seed", type=int, default=0, help="tiny: weight initialisation seed")
    prep.add_argument("--model-id", help="hub: model id, e.g. Qwen/Qwen2.5-7B-Instruct")
    prep.add_argument("--revision", help="hub: commit or tag")
    prep.set_defaults(run=prepare_model)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
