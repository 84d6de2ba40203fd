"""Command line for the data steps the workflow runs:

    python -m sdoc_model.data list
    python -m sdoc_model.data download NAME... --raw-dir DIR [--mirror DIR]
    python -m sdoc_model.data normalise NAME --raw-dir DIR --out FILE.jsonl [--lenient]
    python -m sdoc_model.data mixture --out FILE.jsonl [--seed N] INPUT.jsonl[:CAP]...
    python -m sdoc_model.data leakage --train MIX.jsonl --eval EVAL.jsonl... --json R.json
        --markdown R.md [--ngram 3] [--threshold 0.8] [--question-only] [--drop-leaked-to F]

--mirror defaults to $SDOC_MIRROR.
Each command prints a JSON summary on stdout; bad input prints `error: ...` and exits 1.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from sdoc_model.utils.cli import exit_on_error

from .download import download_dataset, mirror_from_env
from .leakage import check_leakage
from .mixture import MixtureInput, build_mixture
from .normalise import normalise_dataset
from .sources import DATASETS


def _list(args: argparse.Namespace) -> object:
    return {
        name: {
            "benchmark": spec.benchmark,
            "split": spec.split,
            "reader": spec.reader,
            "files": [s.url for s in spec.sources],
        }
        for name, spec in DATASETS.items()
    }


def _download(args: argparse.Namespace) -> object:
    return {
        name: [str(p) for p in download_dataset(name, args.raw_dir, args.mirror)]
        for name in args.names
    }


def _normalise(args: argparse.Namespace) -> object:
    return asdict(normalise_dataset(args.name, args.raw_dir, args.out, strict=not args.lenient))


def _mixture(args: argparse.Namespace) -> object:
    inputs = [MixtureInput.parse(text) for text in args.inputs]
    return asdict(build_mixture(inputs, args.out, seed=args.seed))


def _leakage(args: argparse.Namespace) -> object:
    report = check_leakage(
        args.train,
        args.eval,
        args.json,
        args.markdown,
        ngram=args.ngram,
        threshold=args.threshold,
        with_options=not args.question_only,
        max_examples=args.examples,
        drop_to=args.drop_leaked_to,
    )
    summary = {
        name: {k: s[k] for k in ("rows", "exact", "near", "leaked")}
        for name, s in report["eval_sets"].items()
    }
    dropped = report["dropped"]["rows_dropped"] if report["dropped"] else None
    return {
        "eval_sets": summary,
        "training_rows_leaked": report["training_rows_leaked"],
        "dropped": dropped,
    }


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m sdoc_model.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="the registered datasets").set_defaults(run=_list)

    download = commands.add_parser("download", help="fetch and verify a dataset's files")
    download.add_argument("names", nargs="+", choices=sorted(DATASETS), metavar="NAME")
    download.add_argument("--raw-dir", type=Path, required=True)
    download.add_argument(
        "--mirror",
        type=Path,
        default=mirror_from_env(),
        help="copy from this mirror folder instead of downloading (default: $SDOC_MIRROR)",
    )
    download.set_defaults(run=_download)

    normalise = commands.add_parser("normalise", help="normalise a dataset into the schema")
    normalise.add_argument("name", choices=sorted(DATASETS), metavar="NAME")
    normalise.add_argument("--raw-dir", type=Path, required=True)
    normalise.add_argument("--out", type=Path, required=True)
    normalise.add_argument(
        "--lenient",
        action="store_true",
        help="quarantine bad rows into OUT-stem.quarantine.jsonl instead of failing",
    )
    normalise.set_defaults(run=_normalise)

    mixture = commands.add_parser("mixture", help="build the training mixture")
    mixture.add_argument("inputs", nargs="+", metavar="INPUT[:CAP]")
    mixture.add_argument("--out", type=Path, required=True)
    mixture.add_argument("--seed", type=int, default=0)
    mixture.set_defaults(run=_mixture)

    leakage = commands.add_parser("leakage", help="training/evaluation overlap report")
    leakage.add_argument("--train", type=Path, required=True)
    leakage.add_argument("--eval", type=Path, nargs="+", required=True)
    leakage.add_argument("--json", type=Path, required=True)
    leakage.add_argument("--markdown", type=Path, required=True)
    leakage.add_argument("--ngram", type=int, default=3)
    leakage.add_argument("--threshold", type=float, default=0.8)
    leakage.add_argument(
        "--question-only", action="store_true", help="compare question stems without their options"
    )
    leakage.add_argument("--examples", type=int, default=5, help="example pairs per set and kind")
    leakage.add_argument(
        "--drop-leaked-to", type=Path, help="also write the mixture without its leaked rows here"
    )
    leakage.set_defaults(run=_leakage)
    return main


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    print(json.dumps(args.run(args), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
