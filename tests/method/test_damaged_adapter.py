"""A damaged adapter file stops every loader with its name and what is wrong: SparseDoctor's
own loader, the stock `lm_eval` CLI, and the workflow's check before lm-eval reads a peft
LoRA folder (peft itself reads adapter files unchecked)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sdoc_model.base_models.prepare import save_model_folder
from sdoc_model.eval.runner import check_adapter_files
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.hf_model import load_adapted_model
from sdoc_model.method.model import ADAPTER_WEIGHTS_NAME, SparseDoctorModel
from sdoc_model.method.variants import build_model
from sdoc_model.utils.tensor_files import CorruptFileError
from tests.factories import write_data_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG = SparseDoctorConfig(num_experts=4, rank=4, top_k=2, dropout=0.0, queue_size=0)
REASONS = {"truncated": "truncated", "bit-flipped": "changed after it was written"}


def damage(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "truncated":
        del raw[-1000:]
    else:  # 1,000 bytes of tensor data overwritten: 0xFF bytes read as NaN
        start = 8 + int.from_bytes(raw[:8], "little")
        raw[start + 2000 : start + 3000] = b"\xff" * 1000
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def adapter_folder(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(0)
    model = SparseDoctorModel(AutoModelForCausalLM.from_pretrained(tiny_model_dir), CONFIG)
    for layer in model.adapted_layers.values():
        torch.nn.init.normal_(layer.lora_B, std=0.05)
    save_model_folder(model, AutoTokenizer.from_pretrained(tiny_model_dir), folder)
    return folder


@pytest.fixture(params=list(REASONS))
def damaged(request, adapter_folder, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    for path in adapter_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    damage(folder / ADAPTER_WEIGHTS_NAME, request.param)
    return folder, REASONS[request.param]


def test_intact_folder_loads(adapter_folder):
    load_adapted_model(adapter_folder)


def test_project_loader_names_the_damaged_file(damaged):
    folder, reason = damaged
    with pytest.raises(CorruptFileError, match=rf"{folder / ADAPTER_WEIGHTS_NAME}: .*{reason}"):
        load_adapted_model(folder)


def test_stock_lm_eval_cli_names_the_damaged_file(damaged, tmp_path):
    folder, reason = damaged
    data = tmp_path / "data"
    write_data_dir(data)
    command = [
        str(Path(sys.executable).parent / "lm_eval"), "--model", "hf",
        "--model_args", f"pretrained={folder},trust_remote_code=True",
        "--include_path", str(REPO / "tasks"), "--tasks", "cmb_xmed", "--limit", "2",
        "--output_path", str(tmp_path / "out"),
    ]  # fmt: skip
    env = {**os.environ, "SDOC_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    assert run.returncode != 0
    assert f"{folder / ADAPTER_WEIGHTS_NAME}: " in run.stderr and reason in run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", list(REASONS))
def test_peft_lora_folder_is_sealed_and_checked_before_evaluation(tiny_model_dir, tmp_path, how):
    torch.manual_seed(0)
    lora = build_model("lora", AutoModelForCausalLM.from_pretrained(tiny_model_dir), CONFIG)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    save_model_folder(lora, tokenizer, tmp_path, sealed=[ADAPTER_WEIGHTS_NAME])
    check_adapter_files(tmp_path)
    damage(tmp_path / ADAPTER_WEIGHTS_NAME, how)
    with pytest.raises(CorruptFileError, match=rf"{tmp_path / ADAPTER_WEIGHTS_NAME}: .*"):
        check_adapter_files(tmp_path)
