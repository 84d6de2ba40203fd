"""Fetch pinned files once, from a mirror folder or the internet, and keep them only if verified.

A file is streamed into a temporary sibling of its destination while its sha256 is computed,
checked against the pinned value, and only then moved into place (os.replace), so an
interrupted or rejected download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path
from typing import BinaryIO

from sdoc_model.utils.atomic import atomic_open

from .sources import Source, dataset

MIRROR_ENV = "SDOC_MIRROR"
TRUST_ENV = "SDOC_TRUST_UNPINNED"
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's sha256 differs from the pinned value."""


class MirrorFileMissingError(FileNotFoundError):
    """The mirror folder lacks a file that was asked of it."""


class IncompleteDownloadError(ConnectionError):
    """The connection ended before the announced Content-Length arrived."""


class UnverifiedSourceError(ValueError):
    """A file without a pinned sha256 was fetched, but trust was not given."""


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def trust_from_env() -> bool:
    return os.environ.get(TRUST_ENV, "").strip().lower() in {"1", "true", "yes"}


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    source: Source,
    raw_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    trust_unpinned: bool = False,
) -> Path:
    """Make `raw_dir / source.path` hold the verified file; fetch it only if it is not there yet.

    With `mirror`, the file is copied from `mirror / source.path`; otherwise it is downloaded
    from `source.url`. Raises ChecksumError, MirrorFileMissingError or UnverifiedSourceError.
    """
    dest = Path(raw_dir) / source.path
    if dest.exists():
        _verify(
            source,
            sha256_file(dest),
            f"existing file {dest} (delete it to fetch again)",
            trust_unpinned,
        )
        return dest
    origin, where = _open_origin(source, mirror)
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
        _verify(source, digest.hexdigest(), where, trust_unpinned)
    return dest


def download_dataset(
    name: str,
    raw_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    trust_unpinned: bool = False,
) -> list[Path]:
    """Fetch every file a registered dataset (sources.DATASETS) is built from."""
    return [fetch(s, raw_dir, mirror, trust_unpinned) for s in dataset(name).sources]


def _open_origin(source: Source, mirror: str | os.PathLike | None) -> tuple[BinaryIO, str]:
    if mirror is not None:
        path = Path(mirror) / source.path
        if not path.is_file():
            raise MirrorFileMissingError(
                f"{path} is not in the mirror {mirror} (wanted for {source.url}); "
                f"unset {MIRROR_ENV} to download it, or add it to the mirror"
            )
        return open(path, "rb"), f"mirror file {path}"
    request = urllib.request.Request(source.url, headers={"User-Agent": "sdoc-model"})
    return urllib.request.urlopen(request, timeout=60), source.url


def _verify(source: Source, got: str, where: str, trust_unpinned: bool) -> None:
    if source.sha256 is None:
        print(f"sha256 of {source.url} ({where}): {got}", file=sys.stderr)
        if not trust_unpinned:
            raise UnverifiedSourceError(
                f"{source.url} has no pinned sha256; {where} has sha256 {got}. Check it and pin "
                f"it in sdoc_model/data/sources.py, or accept it unverified with "
                f"--trust-unpinned or {TRUST_ENV}=1. Refusing to use it."
            )
        print(f"WARNING: keeping unverified {source.url} (trust given)", file=sys.stderr)
    elif got != source.sha256:
        raise ChecksumError(
            f"checksum mismatch for {where} ({source.url}): expected sha256 {source.sha256} "
            f"(pinned in sdoc_model/data/sources.py), got {got}. Refusing to use it."
        )
