"""Fetch one pinned raw file (from $SDOC_MIRROR when set) and verify it against its pin."""

import logging
import sys

from sdoc_model.data.download import fetch, mirror_from_env
from sdoc_model.data.sources import DATASETS

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

path = snakemake.wildcards.source_path
source = next(s for spec in DATASETS.values() for s in spec.sources if s.path == path)
fetch(source, "resources/raw", mirror_from_env())
