"""Every variant from one config, and the config itself."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import LlamaConfig, LlamaForCausalLM

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.model import SparseDoctorModel
from sdoc_model.method.variants import VARIANTS, build_model, lora_config, variant_config

TINY = LlamaConfig(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
)
CONFIG = SparseDoctorConfig(num_experts=4, rank=4, top_k=2, alpha=8.0, queue_size=32)


def tiny_llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(TINY)


def test_variant_configs():
    assert variant_config("sparsedoctor", CONFIG) == CONFIG
    assert variant_config("sparsedoctor_noqueue", CONFIG).queue_size == 0
    assert (
        variant_config("lora_moe", CONFIG).cl_weight == 0
        and variant_config("lora_moe", CONFIG).top_k == 2
    )
    dense = variant_config("lora_moe_dense", CONFIG)
    assert dense.top_k == dense.num_experts == 4 and dense.cl_weight == 0
    assert variant_config("base", CONFIG) is CONFIG and variant_config("lora", CONFIG) is CONFIG
    with pytest.raises(ValueError, match="unknown variant 'moe'"):
        variant_config("moe", CONFIG)


def test_lora_has_rank_k_times_r_and_the_same_scaling():
    lora = lora_config(CONFIG)
    assert lora.r == CONFIG.top_k * CONFIG.rank == 8
    assert lora.lora_alpha / lora.r == CONFIG.alpha / CONFIG.rank == CONFIG.scaling
    assert (
        set(lora.target_modules) == set(CONFIG.target_modules)
        and lora.lora_dropout == CONFIG.dropout
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_trains_and_starts_at_the_base_model(variant):
    input_ids = torch.randint(0, 128, (2, 6))
    with torch.no_grad():
        expected = tiny_llama().eval()(input_ids=input_ids).logits
    model = build_model(variant, tiny_llama(), CONFIG).eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=input_ids).logits, expected)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if variant == "base":
        assert trainable == []
        return
    model.train()
    loss = model(input_ids=input_ids, labels=input_ids).loss
    if isinstance(model, SparseDoctorModel):
        assert model.config == variant_config(variant, CONFIG)
        has_cl = any(layer.cl_temperature for layer in model.adapted_layers.values())
        assert has_cl == (variant in ("sparsedoctor", "sparsedoctor_noqueue"))
        loss = loss + model.aux_loss()
    else:
        assert isinstance(model, PeftModel)
    loss.backward()
    assert all(p.grad is not None for p in trainable)


def test_lora_saves_with_peft_and_reloads(tmp_path):
    model = build_model("lora", tiny_llama(), CONFIG)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "adapter_config.json").read_text())["peft_type"] == "LORA"
    reloaded = PeftModel.from_pretrained(tiny_llama(), tmp_path)
    input_ids = torch.randint(0, 128, (1, 5))
    with torch.no_grad():
        assert torch.equal(
            reloaded(input_ids=input_ids).logits, model.eval()(input_ids=input_ids).logits
        )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"top_k": 9}, "top_k"),
        ({"rank": 0}, "rank"),
        ({"num_experts": 0}, "num_experts"),
        ({"lb_weight": -1.0}, "lb_weight"),
        ({"cl_weight": -0.1}, "cl_weight"),
        ({"z_weight": -0.1}, "z_weight"),
        ({"cl_temperature": 0.0}, "cl_temperature"),
        ({"alpha": -1.0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"queue_size": -1}, "queue_size"),
        ({"target_modules": []}, "target_modules"),
        ({"contrastive_layers": ["last"]}, "contrastive_layers"),
    ],
)
def test_config_validation_names_the_key(overrides, key):
    with pytest.raises(ValueError, match=f"^{key} "):
        SparseDoctorConfig(**overrides).validate()


def test_contrastive_layers_resolve_against_the_model_depth():
    assert SparseDoctorConfig().contrastive_layer_indices(30) == {26, 27, 28, 29}  # the last four
    assert SparseDoctorConfig().contrastive_layer_indices(2) == {0, 1}
    assert SparseDoctorConfig(contrastive_layers=[0, -1]).contrastive_layer_indices(30) == {0, 29}
    assert SparseDoctorConfig(cl_weight=0.0).contrastive_layer_indices(30) == set()
    with pytest.raises(ValueError, match="contrastive_layers: index -31 is out of range"):
        SparseDoctorConfig(contrastive_layers=[-31]).contrastive_layer_indices(30)


def test_config_json_round_trip(tmp_path):
    config = SparseDoctorConfig(
        num_experts=16, contrastive_layers=[-2, -1], base_model_name_or_path="some/model"
    )
    config.save(tmp_path / "c.json")
    assert SparseDoctorConfig.load(tmp_path / "c.json") == config
    assert json.loads((tmp_path / "c.json").read_text())["num_experts"] == 16
    with pytest.raises(ValueError, match="unknown SparseDoctorConfig key.*experts"):
        SparseDoctorConfig.from_dict({"experts": 4})
    with pytest.raises(ValueError, match="^rank "):
        SparseDoctorConfig.from_dict({"rank": -2})
