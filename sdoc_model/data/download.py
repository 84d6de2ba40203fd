"""Fetch pinned files once, from a mirror folder or their origin, and keep them only if verified.

Hugging Face files are fetched with huggingface_hub at their pinned commit: it caches them (in
HF_HOME), serves them from its cache without a network call (HF_HUB_OFFLINE=1 works once the
cache holds them) and shows progress. It checks only the size of what it downloads, not the
bytes, so the copy made here is checked against the pinned sha256, else against the sha256 the
commit's LFS pointer gives (the name huggingface_hub gives the cached blob). Raw GitHub files
are downloaded with urllib and checked against their pinned sha256: no dependency of the
project downloads an arbitrary URL against a checksum.

A file is streamed into a temporary sibling of its destination while its sha256 is computed,
checked, and only then moved into place (os.replace), so an interrupted or rejected download
never leaves a file that looks complete. The sha256 received is logged; the provenance hashes
the files in the raw-data folder, so it records the bytes received, pinned or not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path
from typing import BinaryIO

from huggingface_hub import hf_hub_download

from sdoc_model.utils.atomic import atomic_open

from .sources import SHA256, Source, dataset

MIRROR_ENV = "SDOC_MIRROR"
_CHUNK = 1 << 20

logger = logging.getLogger(__name__)


class ChecksumError(ValueError):
    """A file's sha256 differs from its pin."""


class MirrorFileMissingError(FileNotFoundError):
    """The mirror folder lacks a file that was asked of it."""


class UnverifiableMirrorFileError(ValueError):
    """A file pinned by its Hugging Face commit alone was asked of a mirror, which cannot show
    that its copy is that commit's."""


class IncompleteDownloadError(ConnectionError):
    """The connection ended before the announced Content-Length arrived."""


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    source: Source, raw_dir: str | os.PathLike, mirror: str | os.PathLike | None = None
) -> Path:
    """Make `raw_dir / source.path` hold the verified file; fetch it only if it is not there yet.

    With `mirror`, the file is copied from `mirror / source.path`; otherwise a Hugging Face file
    comes through huggingface_hub, any other from `source.url`. Raises ChecksumError,
    MirrorFileMissingError, UnverifiableMirrorFileError, or huggingface_hub's errors
    (LocalEntryNotFoundError: offline and not in its cache).
    """
    dest = Path(raw_dir) / source.path
    if dest.exists():
        expected = source.sha256
        if expected is None:  # pinned by its commit: compare with what the commit holds
            cached, expected = _from_hub(source)
            expected = expected or sha256_file(cached)
        where = f"existing file {dest} (delete it to fetch again)"
        _check(source, sha256_file(dest), expected, where)
        return dest
    origin, where, expected = _open_origin(source, mirror)
    with origin, atomic_open(dest, "wb") as out:
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: origin.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        # http.client returns a short body without complaint when the connection drops.
        announced = getattr(origin, "headers", {}).get("Content-Length")
        if announced is not None and int(announced) != size:
            raise IncompleteDownloadError(f"{where}: got {size} of {announced} bytes")
        _check(source, digest.hexdigest(), expected, where)
    logger.info("fetched %s from %s: sha256 %s", dest, where, digest.hexdigest())
    return dest


def download_dataset(
    name: str, raw_dir: str | os.PathLike, mirror: str | os.PathLike | None = None
) -> list[Path]:
    """Fetch every file a registered dataset (sources.DATASETS) is built from."""
    return [fetch(s, raw_dir, mirror) for s in dataset(name).sources]


def _open_origin(
    source: Source, mirror: str | os.PathLike | None
) -> tuple[BinaryIO, str, str | None]:
    """The file's bytes, where they come from, and the sha256 they must have (None: the
    commit, through huggingface_hub, is the only check; see _from_hub)."""
    if mirror is not None:
        path = Path(mirror) / source.path
        if source.sha256 is None:
            raise UnverifiableMirrorFileError(
                f"{source.url} is pinned by its Hugging Face commit alone, so a copy in the "
                f"mirror {mirror} cannot be checked; unset {MIRROR_ENV} to fetch it with "
                f"huggingface_hub, or pin its sha256 in sdoc_model/data/sources.py"
            )
        if not path.is_file():
            raise MirrorFileMissingError(
                f"{path} is not in the mirror {mirror} (wanted for {source.url}); "
                f"unset {MIRROR_ENV} to download it, or add it to the mirror"
            )
        return open(path, "rb"), f"mirror file {path}", source.sha256
    if source.hub_file is not None:
        cached, lfs_sha256 = _from_hub(source)
        return open(cached, "rb"), f"{source.url} (cached at {cached})", source.sha256 or lfs_sha256
    request = urllib.request.Request(source.url, headers={"User-Agent": "sdoc-model"})
    return urllib.request.urlopen(request, timeout=60), source.url, source.sha256


def _from_hub(source: Source) -> tuple[Path, str | None]:
    """The file huggingface_hub holds for `source` at its pinned commit (downloaded into its
    cache if not there yet), and the sha256 the commit's LFS pointer gives for it.

    huggingface_hub stores an LFS file as a blob named by that sha256 (its etag) and links the
    commit's path to it, so the name is read off the link. None when the blob is named
    otherwise (a small file kept in git is named by its git sha1; a cache without symlinks
    holds plain copies): then what huggingface_hub serves for the commit is taken as is.
    """
    hub = source.hub_file
    cached = Path(
        hf_hub_download(hub.repo_id, hub.filename, repo_type="dataset", revision=hub.revision)
    )
    blob = cached.resolve().name
    return cached, blob if SHA256.fullmatch(blob) else None


def _check(source: Source, got: str, expected: str | None, where: str) -> None:
    if expected is None or got == expected:
        return
    pin = (
        "pinned in sdoc_model/data/sources.py"
        if expected == source.sha256
        else f"the file at Hugging Face commit {source.hub_file.revision}"
    )
    raise ChecksumError(
        f"checksum mismatch for {where} ({source.url}): expected sha256 {expected} ({pin}), "
        f"got {got}. Refusing to use it."
    )
