"""An adapter folder written before the method moved into `sdoc_model.method` still loads.

`fixtures/adapter_folder_v0/` was written by `SparseDoctorModel.save_pretrained` at commit
7e282e6 (tiny Llama shape, 2 experts of rank 2, top-1, q/v/down projections, non-zero weights,
partly filled memory queues). Its shim files import `sdoc_model.hf_checkpoint`, and its
`base_model_name_or_path` is `tiny-base`, a path relative to the working directory.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.factories import write_data_dir

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adapter_folder_v0"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, tiny_model_dir, monkeypatch):
    shutil.copytree(FIXTURE, tmp_path / "adapter")
    (tmp_path / "tiny-base").symlink_to(tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_transformers_loads_the_saved_weights(workdir, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(workdir / "adapter", trust_remote_code=True)
    saved = load_file(FIXTURE / "adapter_model.safetensors")
    assert len(saved) == 2 * 3 * 3  # layers x modules x (lora_A, lora_B, router.weight)
    for name, tensor in saved.items():
        assert torch.equal(model.get_parameter(name), tensor), name
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, base(ids).logits)


def test_stock_lm_eval_cli_evaluates_it(workdir):
    data = workdir / "data"
    write_data_dir(data)
    model_args = "pretrained=adapter,trust_remote_code=True,tokenizer=tiny-base"
    command = [
        str(Path(sys.executable).parent / "lm_eval"), "--model", "hf", "--model_args", model_args,
        "--include_path", str(REPO / "tasks"), "--tasks", "cmb_xmed", "--limit", "2",
        "--output_path", str(workdir / "out"),
    ]  # fmt: skip
    env = {**os.environ, "SDOC_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    [result] = (workdir / "out").rglob("results_*.json")
    assert "acc,none" in json.loads(result.read_text())["results"]["cmb_xmed"]
