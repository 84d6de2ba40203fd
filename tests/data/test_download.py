"""Pinned sources and the downloader: mirror copies, real HTTP, checksums, atomic writes."""

import csv
import hashlib
import http.server
import threading
import urllib.error
from pathlib import Path

import pytest

from sdoc_model.data.__main__ import main
from sdoc_model.data.download import (
    ChecksumError,
    IncompleteDownloadError,
    MirrorFileMissingError,
    UnverifiedSourceError,
    download_dataset,
    fetch,
    trust_from_env,
)
from sdoc_model.data.sources import (
    CMB_EXAM_TRAIN,
    DATASETS,
    XMED_CMB_TEST,
    Source,
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


def test_unpinned_file_needs_explicit_trust(tmp_path, capsys):
    fake_mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    data = b'[{"question": "q"}]'
    (fake_mirror / CMB_EXAM_TRAIN.path).parent.mkdir(parents=True)
    (fake_mirror / CMB_EXAM_TRAIN.path).write_bytes(data)
    assert CMB_EXAM_TRAIN.sha256 is None
    with pytest.raises(UnverifiedSourceError, match="SDOC_TRUST_UNPINNED=1"):
        fetch(CMB_EXAM_TRAIN, raw, fake_mirror)
    assert _sha256(data) in capsys.readouterr().err
    assert _files_under(raw) == []
    assert fetch(CMB_EXAM_TRAIN, raw, fake_mirror, trust_unpinned=True).read_bytes() == data


def test_cli_trusts_unpinned_files_only_when_told(tmp_path, monkeypatch, cli_error):
    fake_mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    (fake_mirror / CMB_EXAM_TRAIN.path).parent.mkdir(parents=True)
    (fake_mirror / CMB_EXAM_TRAIN.path).write_text("[]")
    args = ["download", "cmb_exam_train", "--raw-dir", str(raw), "--mirror", str(fake_mirror)]
    monkeypatch.delenv("SDOC_TRUST_UNPINNED", raising=False)
    assert "has no pinned sha256" in cli_error(main, args)
    monkeypatch.setenv("SDOC_TRUST_UNPINNED", "1")
    assert trust_from_env()
    main(args)
    assert (raw / CMB_EXAM_TRAIN.path).read_text() == "[]"


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
        fetch(
            Source(f"{base}/truncated", "github/o/r/truncated.csv", None), raw, trust_unpinned=True
        )
    assert _files_under(raw) == []


def test_download_from_a_file_url(tmp_path):
    source_file = tmp_path / "val.jsonl"
    source_file.write_bytes(b"{}\n")
    source = Source(source_file.as_uri(), "github/o/r/val.jsonl", _sha256(b"{}\n"))
    assert fetch(source, tmp_path / "raw").read_bytes() == b"{}\n"
