"""The data layer: pinned sources, download, normalisation, training mixture, leakage check.

sources    files pinned by sha256 or HF commit; DATASETS: dataset name -> files + reader
download   fetch(), download_dataset(): verified, atomic, from a mirror or the internet
schema     the JSONL question schema and its validation
normalise  one reader per source format; normalise_dataset()
mixture    build_mixture(): the training mixture
leakage    check_leakage(): training/evaluation overlap report
__main__   the command line (python -m sdoc_model.data --help)
"""

from .download import download_dataset, fetch
from .leakage import check_leakage
from .mixture import MixtureInput, build_mixture
from .normalise import normalise_dataset, quarantine_path
from .schema import SchemaError, load_records
from .sources import DATASETS

__all__ = [
    "DATASETS",
    "MixtureInput",
    "SchemaError",
    "build_mixture",
    "check_leakage",
    "download_dataset",
    "fetch",
    "load_records",
    "normalise_dataset",
    "quarantine_path",
]
