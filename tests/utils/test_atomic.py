"""Atomic folders: complete or absent, never half-written, whatever was there before."""

import pytest

from sdoc_model.utils.atomic import atomic_folder


def test_a_finished_folder_replaces_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old")

    with atomic_folder(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "weights.bin").write_text("new")

    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_an_error_keeps_the_old_folder_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")

    with pytest.raises(RuntimeError, match="disk full"), atomic_folder(target) as tmp:
        (tmp / "weights.bin").write_text("half")
        raise RuntimeError("disk full")

    assert (target / "weights.bin").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_link_is_replaced_not_followed(tmp_path):
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "keep.bin").write_text("shared")
    target = tmp_path / "model"
    target.symlink_to(snapshot, target_is_directory=True)

    with atomic_folder(target) as tmp:
        (tmp / "weights.bin").write_text("new")

    assert not target.is_symlink() and (target / "weights.bin").exists()
    assert (snapshot / "keep.bin").read_text() == "shared"


def test_leftovers_of_a_killed_writer_are_cleared(tmp_path):
    leftover = tmp_path / ".model.0123456789ab.tmp"
    leftover.mkdir()
    (leftover / "partial.bin").write_text("half")

    with atomic_folder(tmp_path / "model") as tmp:
        (tmp / "weights.bin").write_text("new")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
