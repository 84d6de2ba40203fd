"""A dataset prepared on first use: from the mirror, verified, normalised once, even when two
processes ask for it at the same moment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdoc_model.data.download import ChecksumError
from sdoc_model.data.prepare import data_dir, prepared_dataset
from sdoc_model.data.schema import load_records
from sdoc_model.data.sources import dataset

PREPARE = "from sdoc_model.data.prepare import prepared_dataset; prepared_dataset('cmb_xmed')"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch, mirror):
    """No SDOC_DATA_DIR: the cache folder, redirected into tmp_path; files from the mirror."""
    monkeypatch.delenv("SDOC_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("SDOC_MIRROR", str(mirror))
    return tmp_path / "sdoc_model"


def test_data_dir_is_the_variable_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("SDOC_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_dir() == Path.home() / ".cache" / "sdoc_model"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "sdoc_model"
    monkeypatch.setenv("SDOC_DATA_DIR", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"


def test_first_use_prepares_and_says_so_once(fresh_cache, capsys):
    path = prepared_dataset("cmb_xmed")
    assert path == fresh_cache / "normalised" / "cmb_xmed.jsonl"
    [source] = dataset("cmb_xmed").sources
    assert (fresh_cache / "raw" / source.path).is_file()
    assert len(load_records(path)) == 2000
    said = capsys.readouterr().err
    assert f"prepared dataset cmb_xmed in {path}: 2,000 questions" in said and "mirror" in said
    assert prepared_dataset("cmb_xmed") == path
    assert capsys.readouterr().err == ""


def test_a_file_that_fails_its_checksum_is_not_used(fresh_cache, tmp_path, mirror, monkeypatch):
    [source] = dataset("cmb_xmed").sources
    forged = tmp_path / "forged"
    (forged / source.path).parent.mkdir(parents=True)
    (forged / source.path).write_bytes((mirror / source.path).read_bytes()[:-10])
    monkeypatch.setenv("SDOC_MIRROR", str(forged))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        prepared_dataset("cmb_xmed")
    assert not (fresh_cache / "normalised" / "cmb_xmed.jsonl").exists()
    assert not (fresh_cache / "raw" / source.path).exists()


def test_two_processes_preparing_at_once_make_one_intact_file(fresh_cache):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE],
            env=os.environ.copy(),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    said = [racer.communicate()[1] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], said
    # One prepared it; the other waited on the lock, then found it made.
    assert sum("prepared dataset cmb_xmed" in text for text in said) == 1
    assert len(load_records(fresh_cache / "normalised" / "cmb_xmed.jsonl")) == 2000
    leftovers = [p.name for p in (fresh_cache / "normalised").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
