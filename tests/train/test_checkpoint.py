"""A checkpoint folder's manifest: every kind of damage is a CorruptFileError naming the file,
so that resume falls back instead of crashing; damaged folders set aside do not pile up."""

import pytest

from sdoc_model.eval.runner import check_adapter_files
from sdoc_model.train.checkpoint import set_aside, verify_manifest, write_manifest
from sdoc_model.utils.tensor_files import CorruptFileError


@pytest.fixture
def folder(tmp_path):
    checkpoint = tmp_path / "step-000004"
    checkpoint.mkdir()
    (checkpoint / "state.json").write_text('{"step": 4}\n')
    write_manifest(checkpoint)
    return checkpoint


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[1, 2]", "not a valid manifest"),
        ('{"state.json": {"sha256": "00"}}', "not a valid manifest"),
        ("{", "not a valid manifest"),
        ('{"gone.json": {"bytes": 3, "sha256": "00"}}', "gone.json: missing"),
    ],
)
def test_a_damaged_manifest_is_named(folder, manifest, message):
    (folder / "manifest.json").write_text(manifest)
    with pytest.raises(CorruptFileError, match=message):
        verify_manifest(folder)


def test_a_changed_file_is_named(folder):
    verify_manifest(folder)
    (folder / "state.json").write_text('{"step": 5}\n')  # same size
    with pytest.raises(CorruptFileError, match=r"state\.json: its sha256 differs"):
        verify_manifest(folder)
    (folder / "state.json").write_text("{}\n")
    with pytest.raises(CorruptFileError, match=r"state\.json: 3 bytes, 12 were written"):
        verify_manifest(folder)


def test_only_the_newest_damaged_checkpoint_is_kept_aside(tmp_path):
    for step in (2, 4):
        (tmp_path / f"step-00000{step}").mkdir()
    set_aside(tmp_path / "step-000002")
    set_aside(tmp_path / "step-000004")
    assert [p.name for p in tmp_path.iterdir()] == ["step-000004.corrupt"]


def test_pickle_weight_files_are_refused_before_lm_eval(tmp_path):
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CorruptFileError, match=r"adapter_model\.bin: a pickle-based weight"):
        check_adapter_files(tmp_path)
