"""Pinned sources and the downloader: mirror copies, Hugging Face files through huggingface_hub
(offline, from a cache the tests fill), real HTTP, checksums, atomic writes."""

import csv
import hashlib
import http.server
import logging
import os
import threading
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from sdoc_model.data import download
from sdoc_model.data.__main__ import main
from sdoc_model.data.download import (
    ChecksumError,
    IncompleteDownloadError,
    MirrorFileMissingError,
    UnverifiableMirrorFileError,
    download_dataset,
    fetch,
)
from sdoc_model.data.sources import (
    CMB_EXAM_TEST,
    CMB_EXAM_TRAIN,
    DATASETS,
    XMED_CMB_TEST,
    Source,
    huggingface_dataset_file,
    mirror_path,
)

DEMO_DATASETS = [
    "cmb_xmed",
    "cmb_xmed_dev",
    "cmexam_xmed",
    "cmexam_xmed_dev",
    "cmmlu_med",
    "cmmlu_med_dev",
    "cmexam_val_xlsx",
]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_mirror_path_maps_github_and_huggingface_urls():
    assert (
        mirror_path(
            "https://raw.githubusercontent.com/haonan-li/CMMLU/d6e7b71/data/test/anatomy.csv"
        )
        == "github/haonan-li/CMMLU/data/test/anatomy.csv"
    )
    assert (
        mirror_path(
            "https://huggingface.co/datasets/FreedomIntelligence/CMB/resolve/935fbc0/CMB-Exam/x.json"
        )
        == "huggingface/datasets/FreedomIntelligence/CMB/CMB-Exam/x.json"
    )
    with pytest.raises(ValueError, match="no mirror mapping"):
        mirror_path("https://example.org/data.csv")


def test_pinned_sources_agree_with_the_mirror_manifest(mirror):
    with open(mirror / "MANIFEST.tsv", encoding="utf-8") as handle:
        manifest = {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}
    sources = {s.path: s for spec in DATASETS.values() for s in spec.sources}
    for name in DEMO_DATASETS:
        for source in DATASETS[name].sources:
            assert source.path in manifest, f"{name}: {source.path} is not in the mirror"
    for path, source in sources.items():
        if path in manifest:
            assert source.sha256 == manifest[path]["sha256"], path
            assert f"/{manifest[path]['commit']}/" in source.url, path


def test_demo_datasets_copy_from_the_mirror_once(tmp_path, mirror):
    for name in DEMO_DATASETS:
        paths = download_dataset(name, tmp_path, mirror)
        assert all(p.is_file() for p in paths)
    copied = XMED_CMB_TEST
    dest = tmp_path / copied.path
    before = dest.stat().st_mtime_ns
    assert fetch(copied, tmp_path, mirror) == dest  # already there and verified: not copied again
    assert dest.stat().st_mtime_ns == before


def test_checksum_mismatch_in_the_mirror_keeps_nothing(tmp_path):
    fake_mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    (fake_mirror / XMED_CMB_TEST.path).parent.mkdir(parents=True)
    (fake_mirror / XMED_CMB_TEST.path).write_text('{"question": "tampered"}\n')
    with pytest.raises(ChecksumError, match=XMED_CMB_TEST.sha256) as error:
        fetch(XMED_CMB_TEST, raw, fake_mirror)
    assert str(fake_mirror / XMED_CMB_TEST.path) in str(error.value)
    assert _files_under(raw) == []


def test_missing_mirror_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(MirrorFileMissingError, match="cmb-single.jsonl is not in the mirror"):
        fetch(XMED_CMB_TEST, tmp_path / "raw", tmp_path / "empty-mirror")
    assert _files_under(tmp_path / "raw") == []


def test_existing_file_with_other_content_is_refused_not_replaced(tmp_path, mirror):
    dest = tmp_path / XMED_CMB_TEST.path
    dest.parent.mkdir(parents=True)
    dest.write_text("stale\n")
    with pytest.raises(ChecksumError, match="existing file"):
        fetch(XMED_CMB_TEST, tmp_path, mirror)
    assert dest.read_text() == "stale\n"


def test_every_file_is_pinned_by_content():
    # What the paper profile needs, and everything else: no file is taken on trust.
    for spec in DATASETS.values():
        for source in spec.sources:
            assert source.sha256 or source.hub_file, source.url
    commit = "935fbc09edf1303d89872b21265ff597f426ac0d"
    hub_url = "https://huggingface.co/datasets/o/n/resolve/{}/x.json"
    assert Source(hub_url.format(commit), "huggingface/datasets/o/n/x.json", None).hub_file
    for revision in ("main", commit[:7], commit.upper()):
        with pytest.raises(ValueError, match=f"revision '{revision}'.*full 40-hex commit"):
            huggingface_dataset_file("o/n", revision, "x.json", None)
    github = f"https://raw.githubusercontent.com/o/r/{commit}/x.csv"
    with pytest.raises(ValueError, match="not a Hugging Face URL.*give its sha256"):
        Source(github, "github/o/r/x.csv", None)
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        Source(github, "github/o/r/x.csv", "ABC")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """huggingface_hub, offline, with an empty cache of its own: `hub.put(source, data)` stores
    a file the way a download at its commit would (an LFS blob named by its sha256, linked from
    the commit's snapshot); `hub.calls` lists the hf_hub_download calls fetch made."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network, ever
    calls = []

    def hf_hub_download(*args, **kwargs):
        calls.append((args, kwargs))
        return huggingface_hub.hf_hub_download(*args, **kwargs)

    def put(source: Source, data: bytes, blob_name: str | None = None) -> None:
        hub_file = source.hub_file
        repo = cache / f"datasets--{hub_file.repo_id.replace('/', '--')}"
        blob = repo / "blobs" / (blob_name or _sha256(data))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / hub_file.revision / hub_file.filename
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))

    monkeypatch.setattr(download, "hf_hub_download", hf_hub_download)
    return SimpleNamespace(put=put, calls=calls)


def test_hub_file_pinned_by_commit_is_fetched_without_trust(tmp_path, hub, caplog):
    data = b'[{"question": "q"}]'
    hub.put(CMB_EXAM_TRAIN, data)
    assert CMB_EXAM_TRAIN.sha256 is None
    with caplog.at_level(logging.INFO, logger="sdoc_model.data.download"):
        dest = fetch(CMB_EXAM_TRAIN, tmp_path / "raw")
    assert dest == tmp_path / "raw" / CMB_EXAM_TRAIN.path  # the mirror's layout
    assert dest.read_bytes() == data and not dest.is_symlink()
    assert f"sha256 {_sha256(data)}" in caplog.text  # the bytes received, on record
    assert hub.calls == [
        (
            ("FreedomIntelligence/CMB", "CMB-Exam/CMB-train/CMB-train-merge.json"),
            {"repo_type": "dataset", "revision": "935fbc09edf1303d89872b21265ff597f426ac0d"},
        )
    ]
    assert fetch(CMB_EXAM_TRAIN, tmp_path / "raw") == dest  # there and matching its commit


def test_hub_bytes_that_do_not_match_their_pin_are_refused(tmp_path, hub):
    raw = tmp_path / "raw"
    # Pinned by sha256: the cache serves other bytes than the pinned ones.
    hub.put(CMB_EXAM_TEST, b"[]")
    with pytest.raises(ChecksumError) as error:
        fetch(CMB_EXAM_TEST, raw)
    for part in (CMB_EXAM_TEST.hub_file.filename, CMB_EXAM_TEST.sha256, _sha256(b"[]")):
        assert part in str(error.value)
    # Pinned by commit: the bytes differ from the sha256 the commit's LFS pointer gives.
    lfs_sha256 = _sha256(b"the commit's bytes")
    hub.put(CMB_EXAM_TRAIN, b"other bytes", blob_name=lfs_sha256)
    with pytest.raises(ChecksumError, match=f"expected sha256 {lfs_sha256} .*commit 935fbc09"):
        fetch(CMB_EXAM_TRAIN, raw)
    assert _files_under(raw) == []


def test_existing_hub_file_is_checked_against_its_commit(tmp_path, hub):
    dest = tmp_path / CMB_EXAM_TRAIN.path
    dest.parent.mkdir(parents=True)
    dest.write_text("stale\n")
    hub.put(CMB_EXAM_TRAIN, b"[]")
    with pytest.raises(ChecksumError, match="existing file"):
        fetch(CMB_EXAM_TRAIN, tmp_path)
    assert dest.read_text() == "stale\n"


def test_hub_file_offline_comes_from_the_cache_or_is_an_error(
    tmp_path, hub, monkeypatch, cli_error
):
    monkeypatch.delenv("SDOC_MIRROR", raising=False)
    raw = tmp_path / "raw"
    with pytest.raises(LocalEntryNotFoundError):
        fetch(CMB_EXAM_TRAIN, raw)
    assert _files_under(raw) == []
    args = ["download", "cmb_exam_train", "--raw-dir", str(raw)]
    assert "cannot find the requested files in the local cache" in cli_error(main, args)
    hub.put(CMB_EXAM_TRAIN, b"[]")
    main(args)  # no trust flag: the commit pins it
    assert (raw / CMB_EXAM_TRAIN.path).read_bytes() == b"[]"


def test_the_mirror_takes_precedence_over_the_hub(tmp_path, hub):
    fake_mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    data = b'[{"question": "q"}]'
    commit = CMB_EXAM_TRAIN.hub_file.revision
    pinned = huggingface_dataset_file("o/n", commit, "val.json", _sha256(data))
    (fake_mirror / pinned.path).parent.mkdir(parents=True)
    (fake_mirror / pinned.path).write_bytes(data)
    assert fetch(pinned, raw, fake_mirror).read_bytes() == data
    # A file pinned by its commit alone cannot be checked in a mirror: refused, not fetched.
    (fake_mirror / CMB_EXAM_TRAIN.path).parent.mkdir(parents=True)
    (fake_mirror / CMB_EXAM_TRAIN.path).write_bytes(data)
    with pytest.raises(UnverifiableMirrorFileError, match="unset SDOC_MIRROR"):
        fetch(CMB_EXAM_TRAIN, raw, fake_mirror)
    assert hub.calls == []
    assert _files_under(raw) == [raw / pinned.path]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; /truncated promises 1000 bytes and sends 10."""

    def do_GET(self):
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_over_http_verifies_the_checksum(tmp_path, http_folder):
    folder, base = http_folder
    data = b",Question,A,B,C,D,Answer\n0,q,a,b,c,d,A\n"
    (folder / "anatomy.csv").write_bytes(data)
    good = Source(f"{base}/anatomy.csv", "github/o/r/anatomy.csv", _sha256(data))
    assert fetch(good, tmp_path / "raw").read_bytes() == data

    wrong = Source(f"{base}/anatomy.csv", "github/o/r/other.csv", _sha256(b"something else"))
    with pytest.raises(ChecksumError, match="anatomy.csv"):
        fetch(wrong, tmp_path / "raw")
    assert _files_under(tmp_path / "raw") == [tmp_path / "raw" / good.path]


def test_failed_or_interrupted_download_leaves_nothing(tmp_path, http_folder):
    _, base = http_folder
    raw = tmp_path / "raw"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        fetch(Source(f"{base}/missing.csv", "github/o/r/missing.csv", "0" * 64), raw)
    with pytest.raises(IncompleteDownloadError, match="got 10 of 1000 bytes"):
        fetch(Source(f"{base}/truncated", "github/o/r/truncated.csv", "0" * 64), raw)
    assert _files_under(raw) == []


def test_download_from_a_file_url(tmp_path):
    source_file = tmp_path / "val.jsonl"
    source_file.write_bytes(b"{}\n")
    source = Source(source_file.as_uri(), "github/o/r/val.jsonl", _sha256(b"{}\n"))
    assert fetch(source, tmp_path / "raw").read_bytes() == b"{}\n"
