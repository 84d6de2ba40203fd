"""python -m sdoc_model.report --config config/ci.yaml --results results/ci [--checksums FILE.json]"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from sdoc_model.report.build import build_report
from sdoc_model.report.inputs import MissingInputError
from sdoc_model.utils.provenance import load_checksums


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

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    results = args.results or Path("results") / config["profile"]
    checksums = load_checksums(args.checksums) if args.checksums else {}
    try:
        outputs = build_report(config, results, checksums)
    except MissingInputError as err:
        raise SystemExit(str(err)) from err
    print(f"wrote {len(outputs)} files; see {results / 'REPORT.md'}")


if __name__ == "__main__":
    main()
