"""Fetch one pinned raw file (from $SDOC_MIRROR when set) and verify it against its pin; in a
profile with `data.synthetic` (the paper rehearsal), make up a file the mirror lacks."""

import logging
import sys
import tempfile
from pathlib import Path

from sdoc_model.data.download import fetch, mirror_from_env
from sdoc_model.data.sources import CMB_TEST_ANSWER_KEY, DATASETS
from sdoc_model.data.synthetic import write_synthetic

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

path = snakemake.wildcards.source_path
source = next(s for spec in DATASETS.values() for s in spec.sources if s.path == path)
raw, mirror = snakemake.params.raw, mirror_from_env()
if snakemake.params.synthetic and not (mirror and (mirror / path).is_file()):
    # Made-up CMB-Exam test questions follow the real answer key, fetched aside for them.
    with tempfile.TemporaryDirectory() as scratch:
        key = fetch(CMB_TEST_ANSWER_KEY, scratch, mirror)
        logging.info("made up %s", write_synthetic(source, Path(raw) / path, key))
else:
    fetch(source, raw, mirror)
