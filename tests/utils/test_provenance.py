"""The provenance's git state: the workflow rewriting its own committed outputs is not a change
of the code that made them."""

import subprocess

from sdoc_model.utils.provenance import git_state


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_dirty_only_for_changes_outside_the_outputs(tmp_path):
    repo = tmp_path / "repo"
    (repo / "results" / "demo").mkdir(parents=True)
    (repo / "results" / "demo" / "REPORT.md").write_text("old\n")
    (repo / "Snakefile").write_text("rule all:\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "initial")

    (repo / "results" / "demo" / "REPORT.md").write_text("new\n")
    (repo / "untracked.txt").write_text("scratch\n")
    state = git_state(repo)
    assert state["dirty"] is False and len(state["commit"]) == 40

    (repo / "Snakefile").write_text("rule all:\n    input: []\n")
    assert git_state(repo)["dirty"] is True


def test_outside_a_repository_the_state_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
