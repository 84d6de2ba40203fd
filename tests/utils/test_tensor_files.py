"""Tensor files that name what is wrong with them, and nested states kept without pickle."""

import os
import pickle
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sdoc_model.utils.tensor_files import (
    SHA256_KEY,
    CorruptFileError,
    load_state,
    load_tensors,
    save_state,
    save_tensors,
    seal,
)

TENSORS = {"a": torch.arange(600, dtype=torch.float32).reshape(20, 30), "b": torch.ones(3)}


def data_start(path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_sealed_file_round_trips_and_stays_a_plain_safetensors_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(TENSORS, path, {"format": "pt"})
    tensors, metadata = load_tensors(path)
    assert all(torch.equal(tensors[k], v) for k, v in TENSORS.items()) and tensors.keys() == {
        "a",
        "b",
    }
    assert metadata["format"] == "pt" and len(metadata[SHA256_KEY]) == 64
    stock = load_file(path)  # other readers see an ordinary file
    assert all(torch.equal(stock[k], v) for k, v in TENSORS.items())
    assert data_start(path) % 8 == 0


def test_seal_adds_the_checksum_to_another_writers_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_file(TENSORS, path)
    assert SHA256_KEY not in load_tensors(path)[1]  # unsealed files still load
    seal(path)
    sealed = path.read_bytes()
    assert SHA256_KEY in load_tensors(path)[1]
    seal(path)
    assert path.read_bytes() == sealed


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(TENSORS, path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match=rf"{path}: .*truncated"):
        load_tensors(path)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(CorruptFileError, match=rf"{path}: .*truncated"):
        load_tensors(path)


def test_changed_tensor_data_is_named(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(TENSORS, path)
    raw = bytearray(path.read_bytes())
    start = data_start(path)
    raw[start + 100 : start + 104] = np.float32(1.5).tobytes()  # still a finite value
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=rf"{path}: .*changed after it was written"):
        load_tensors(path)


def test_non_finite_values_are_named_with_their_tensor(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors({**TENSORS, "b": torch.tensor([1.0, float("nan"), float("inf")])}, path)
    with pytest.raises(CorruptFileError, match=rf"{path}: tensor b holds 2 non-finite value"):
        load_tensors(path)


class Payload:
    def __reduce__(self):
        return (os.mkdir, (str(MARKER),))


MARKER = None


def test_a_pickle_under_a_tensor_file_name_is_refused_not_run(tmp_path):
    global MARKER
    MARKER = tmp_path / "payload-ran"
    path = tmp_path / "trainer.safetensors"
    path.write_bytes(pickle.dumps({"state": Payload()}))
    with pytest.raises(CorruptFileError, match=str(path)):
        load_state(path)
    assert not MARKER.exists()


def test_nested_state_round_trips(tmp_path):
    parameter = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.AdamW([parameter])
    parameter.grad = torch.full((4,), 0.5)
    optimizer.step()
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "optimizer": optimizer.state_dict(),
        "empty": {},
    }
    save_state(state, tmp_path / "s.safetensors")
    loaded = load_state(tmp_path / "s.safetensors")
    assert loaded["python"] == state["python"]
    assert loaded["numpy"][0] == "MT19937" and np.array_equal(loaded["numpy"][1], state["numpy"][1])
    assert torch.equal(loaded["torch"], state["torch"]) and loaded["empty"] == {}
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert list(loaded["optimizer"]["state"]) == [0]  # integer keys stay integers
    other = torch.optim.AdamW([torch.nn.Parameter(torch.ones(4))])
    other.load_state_dict(loaded["optimizer"])
    assert torch.equal(other.state_dict()["state"][0]["exp_avg"], torch.full((4,), 0.05))
    random.setstate(loaded["python"])
    np.random.set_state(loaded["numpy"])


def test_objects_that_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"state at opt/fn: a function cannot be stored"):
        save_state({"opt": {"fn": lambda: 0}}, tmp_path / "s.safetensors")
