"""The ``sdoc`` command.

sdoc run [SNAKEMAKE ARGS]     the workflow, recovering from an interrupted run
sdoc prepare-model ...        a base model folder, offline
sdoc cost [--config ...]      a profile's jobs and the GPU-hours they will take
"""

from __future__ import annotations

import argparse

from sdoc_model.base_models.cli import add_prepare_model
from sdoc_model.cost import add_cost
from sdoc_model.utils.cli import exit_on_error
from sdoc_model.workflow_run import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdoc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    # Every argument after `run` goes to Snakemake (see main).
    commands.add_parser("run", help="snakemake with these arguments, after a stale lock is cleared")
    add_prepare_model(commands)
    add_cost(commands)
    return parser


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        run(rest)
    else:
        args.run(args)


if __name__ == "__main__":
    main()
