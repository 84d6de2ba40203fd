"""Hub models load at a pinned commit: from the config, or resolved once into the profile's
lock file and read from it ever after; an architecture transformers cannot build needs an
explicit remote-code opt-in."""

import json
from types import SimpleNamespace

import pytest
import yaml

from sdoc_model.hub_lock import COMMIT, check_architectures, pinned_commit, read_lock
from sdoc_model.profile import model_specs
from tests.conftest import REPO

SHA = "b" * 40


@pytest.fixture
def hub(monkeypatch):
    """The hub's model_info, answering from a dict; records every call."""
    calls, commits = [], {"main": SHA, "v1": "c" * 40}

    def model_info(self, model_id, revision):
        calls.append((model_id, revision))
        if revision not in commits:
            raise OSError("offline")
        return SimpleNamespace(sha=commits[revision], config={"architectures": ["ToyForCausalLM"]})

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", model_info)
    return calls


def test_a_commit_in_the_config_is_the_pin(hub, tmp_path):
    assert pinned_commit("org/model", "a" * 40, tmp_path / "p.lock.json") == "a" * 40
    assert hub == [] and not (tmp_path / "p.lock.json").exists()


def test_a_ref_is_resolved_once_then_read_from_the_lock(hub, tmp_path):
    lock = tmp_path / "p.lock.json"
    assert pinned_commit("org/model", None, lock) == SHA
    assert read_lock(lock)["org/model"] == {
        "ref": "main", "commit": SHA, "architectures": ["ToyForCausalLM"],
    }  # fmt: skip
    assert pinned_commit("org/model", None, lock) == SHA
    assert hub == [("org/model", "main")]  # the second run asked nobody
    assert pinned_commit("org/model", "v1", lock) == "c" * 40  # another ref: resolved anew


def test_an_unresolvable_model_names_itself_and_the_lock(hub, tmp_path):
    with pytest.raises(ValueError, match=r"org/model \(nightly\) has no commit in .*p.lock.json"):
        pinned_commit("org/model", "nightly", tmp_path / "p.lock.json")


def test_remote_code_is_an_explicit_opt_in(tmp_path):
    lock = tmp_path / "p.lock.json"
    lock.write_text(json.dumps({
        "org/custom": {"ref": "main", "commit": SHA, "architectures": ["BaichuanForCausalLM"]},
        "org/plain": {"ref": "main", "commit": SHA, "architectures": ["Qwen2ForCausalLM"]},
    }))  # fmt: skip
    plain = {"model_id": "org/plain"}
    check_architectures({"external.plain": plain}, lock)
    custom = {"model_id": "org/custom"}
    with pytest.raises(
        ValueError, match="external.custom .*BaichuanForCausalLM.*trust_remote_code"
    ):
        check_architectures({"external.custom": custom}, lock)
    check_architectures({"external.custom": custom | {"trust_remote_code": True}}, lock)


def test_the_paper_profile_pins_its_base_model_and_opts_huatuo_into_remote_code():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert COMMIT.fullmatch(config["base_model"]["revision"])
    specs = model_specs(config)
    assert specs["huatuogpt2_7b"].trust_remote_code and not specs["apollo_7b"].trust_remote_code
    assert not any(spec.chat_template for spec in specs.values())
