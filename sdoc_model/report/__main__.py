"""python -m sdoc_model.report --config config/ci.yaml --results results/ci
[--checksums FILE.json]"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdoc_model.profile import read_config
from sdoc_model.report.build import build_report
from sdoc_model.utils.cli import exit_on_error
from sdoc_model.utils.provenance import load_checksums


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sdoc_model.report",
        description="Tables, figures and REPORT.md for one profile.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the profile's config YAML")
    parser.add_argument("--results", type=Path, help="results folder (default: results/<profile>)")
    parser.add_argument(
        "--checksums", type=Path, help="JSON object {data file: sha256} for the provenance"
    )
    args = parser.parse_args(argv)

    config = read_config(args.config)
    results = args.results or Path("results") / config["profile"]
    checksums = load_checksums(args.checksums) if args.checksums else {}
    outputs = build_report(config, results, checksums)
    print(f"wrote {len(outputs)} files; see {results / 'REPORT.md'}")


if __name__ == "__main__":
    main()
