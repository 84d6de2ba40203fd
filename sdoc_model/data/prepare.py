"""A normalised dataset on first use: how the lm-eval tasks get their questions on their own.

`prepared_dataset(name)` returns `DATA_DIR/normalised/<name>.jsonl`, making it when it is not
there: every pinned file is fetched into `DATA_DIR/raw/` (from $SDOC_MIRROR when set, else
its origin) and verified against its pin, then the dataset is normalised, leniently (rejected rows
kept with their reason in `<name>.quarantine.jsonl`). This is what the workflow's download and
normalise rules run (download.fetch for each file, normalise.normalise_dataset), and the
workflow's data folder, `resources/<profile>/data`, has this layout: SDOC_DATA_DIR pointed at
it makes the tasks read what the workflow prepared.

DATA_DIR is $SDOC_DATA_DIR, else a cache folder: $XDG_CACHE_HOME/sdoc_model, by default
~/.cache/sdoc_model. A lock file per dataset makes processes that prepare the same dataset at
once wait for each other, and every file is written atomically, so a reader never sees half of
one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from filelock import FileLock

from .download import download_dataset, mirror_from_env
from .normalise import normalise_dataset
from .sources import dataset

DATA_DIR_ENV = "SDOC_DATA_DIR"


def data_dir() -> Path:
    """$SDOC_DATA_DIR, else $XDG_CACHE_HOME/sdoc_model (~/.cache/sdoc_model)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "sdoc_model"


def normalised_path(name: str, folder: Path) -> Path:
    return folder / "normalised" / f"{name}.jsonl"


def prepared_dataset(name: str, folder: Path | None = None) -> Path:
    """The normalised JSONL of dataset `name` in `folder` (default: `data_dir()`), made on first
    use from the mirror or the pinned URLs; says on stderr what it did."""
    folder = data_dir() if folder is None else Path(folder)
    path = normalised_path(name, folder)
    if path.is_file():
        return path
    spec = dataset(name)  # an unknown name fails here, before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(f".{path.name}.lock")):
        if path.is_file():  # another process made it while this one waited
            return path
        mirror = mirror_from_env()
        download_dataset(name, folder / "raw", mirror)
        report = normalise_dataset(name, folder / "raw", path, strict=False)
    origin = f"the mirror {mirror}" if mirror else "their pinned URLs"
    print(
        f"sdoc_model: prepared dataset {name} in {path}: {report.rows:,} questions "
        f"({report.quarantined:,} rows quarantined) from {len(spec.sources)} verified file(s) "
        f"of {origin}",
        file=sys.stderr,
    )
    return path
