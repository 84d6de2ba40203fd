"""Fetch one pinned raw file (from $SDOC_MIRROR when set) and verify it against its pin; in a
profile with `data.synthetic` (the paper rehearsal), make up a file the mirror lacks."""

import logging
import sys
from pathlib import Path

from sdoc_model.data.download import fetch, mirror_from_env
from sdoc_model.data.sources import DATASETS
from sdoc_model.data.synthetic import write_synthetic

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

path = snakemake.wildcards.source_path
source = next(s for spec in DATASETS.values() for s in spec.sources if s.path == path)
raw, mirror = snakemake.params.raw, mirror_from_env()
if snakemake.params.synthetic and not (mirror and (mirror / path).is_file()):
    key = snakemake.input.get("answer_key")  # for the CMB-Exam test questions
    logging.info("made up %s", write_synthetic(source, Path(raw) / path, key and Path(key)))
else:
    fetch(source, raw, mirror)
