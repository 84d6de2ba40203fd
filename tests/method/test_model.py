"""SparseDoctorModel on a tiny Llama: injection, routing losses, saving and loading."""

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from sdoc_model.method.config import DEFAULT_TARGET_MODULES, SparseDoctorConfig
from sdoc_model.method.layer import LoRAMoELinear
from sdoc_model.method.model import ADAPTER_WEIGHTS_NAME, MEMORY_QUEUES_NAME, SparseDoctorModel

TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("base")
    LlamaForCausalLM(LlamaConfig(**TINY)).save_pretrained(directory)
    return directory


def load_base(base_dir, **kwargs):
    return LlamaForCausalLM.from_pretrained(base_dir, **kwargs)


def trained_like(model: SparseDoctorModel, seed=1) -> SparseDoctorModel:
    """Non-zero lora_B everywhere, as after training, so that the adapter changes the logits."""
    torch.manual_seed(seed)
    for layer in model.adapted_layers.values():
        torch.nn.init.normal_(layer.lora_B, std=0.05)
    return model


def batch(seed=0, pad=3):
    """Two right-padded sequences of 10 tokens; the second has `pad` padding tokens."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, TINY["vocab_size"], (2, 10), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 10 - pad :] = 0
    return input_ids, attention_mask


def config(**overrides):
    return SparseDoctorConfig(
        **{"num_experts": 4, "rank": 4, "top_k": 2, "dropout": 0.0, "queue_size": 16, **overrides}
    )


def test_fresh_adapter_leaves_logits_exactly_unchanged(base_dir):
    input_ids, attention_mask = batch()
    base = load_base(base_dir).eval()
    with torch.no_grad():
        expected = base(input_ids=input_ids, attention_mask=attention_mask).logits
    model = SparseDoctorModel(load_base(base_dir), SparseDoctorConfig(dropout=0.1))
    for mode in (model.eval, model.train):
        mode()
        with torch.no_grad():
            assert torch.equal(
                model(input_ids=input_ids, attention_mask=attention_mask).logits, expected
            )


def test_injection_targets_every_projection_and_freezes_the_base(base_dir, capsys):
    model = SparseDoctorModel(load_base(base_dir), config())
    layers = model.adapted_layers
    assert len(layers) == TINY["num_hidden_layers"] * len(DEFAULT_TARGET_MODULES)
    assert all(isinstance(model.base_model.get_submodule(name), LoRAMoELinear) for name in layers)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        name.endswith(("lora_A", "lora_B", "router.weight")) for name in trainable
    )
    shapes = [layer.base_layer.weight.shape for layer in layers.values()]
    expected = sum(4 * 4 * (d_in + d_out) + 4 * d_in for d_out, d_in in shapes)  # A, B, router
    count, total = model.trainable_parameters()
    assert count == expected and total == expected + sum(
        p.numel() for p in load_base(base_dir).parameters()
    )
    model.print_trainable_parameters()
    assert f"trainable params: {expected:,d}" in capsys.readouterr().out


def test_bad_targets_are_refused(base_dir):
    with pytest.raises(ValueError, match="match no module"):
        SparseDoctorModel(load_base(base_dir), config(target_modules=["no_such_proj"]))
    with pytest.raises(TypeError, match="model.embed_tokens is a Embedding"):
        SparseDoctorModel(load_base(base_dir), config(target_modules=["embed_tokens"]))


@pytest.mark.parametrize(
    ("layers", "queue_size", "expected"),
    [(None, 16, {0, 1, 2, 3}), ([0, -1], 16, {0, 3}), ([1], 0, {1})],
)
def test_contrastive_layers_get_the_loss_and_a_queue(base_dir, layers, queue_size, expected):
    model = SparseDoctorModel(
        load_base(base_dir), config(contrastive_layers=layers, queue_size=queue_size)
    )
    layers = model.adapted_layers.items()
    contrastive = {int(name.split(".")[2]) for name, layer in layers if layer.cl_temperature}
    queued = {int(name.split(".")[2]) for name, layer in layers if layer.memory_queue is not None}
    assert contrastive == expected
    assert queued == (expected if queue_size else set())


def test_contrastive_layer_out_of_range_is_named(base_dir):
    with pytest.raises(ValueError, match="contrastive_layers: index 4 is out of range"):
        SparseDoctorModel(load_base(base_dir), config(contrastive_layers=[4]))


def test_aux_losses_and_routing_stats(base_dir):
    model = trained_like(SparseDoctorModel(load_base(base_dir), config(z_weight=0.001))).train()
    with pytest.raises(RuntimeError, match="run a forward pass first"):
        model.aux_losses()
    input_ids, attention_mask = batch()
    model(input_ids=input_ids, attention_mask=attention_mask)
    losses = model.aux_losses()
    assert set(losses) == {"lb", "z", "cl"} and all(v.requires_grad for v in losses.values())
    assert losses["lb"] > 0 and losses["z"] > 0 and losses["cl"] > 0
    weighted = 0.01 * losses["lb"] + 0.001 * losses["z"] + 0.1 * losses["cl"]
    assert torch.allclose(model.aux_loss(), weighted)
    stats = model.routing_stats()
    assert list(stats) == list(model.adapted_layers)
    for stat in stats.values():
        assert (
            torch.allclose(stat["load"].sum(), torch.tensor(1.0)) and not stat["load"].requires_grad
        )
        assert 0 <= stat["entropy"] <= math.log(4)


def test_padding_is_left_out_of_routing_losses_and_representations(base_dir):
    """Right padding: real tokens never attend to it, so only what is done with the padded
    positions themselves could change the losses when the padding tokens change."""
    model = trained_like(
        SparseDoctorModel(load_base(base_dir), config(queue_size=0, z_weight=0.1))
    ).train()
    input_ids, attention_mask = batch(pad=4)
    results = []
    for pad_token in (0, 7):
        padded = input_ids.masked_fill(attention_mask == 0, pad_token)
        model(input_ids=padded, attention_mask=attention_mask)
        probs = next(iter(model.adapted_layers.values())).last_routing.probs.detach()
        stats = {f"{n}.{k}": v for n, s in model.routing_stats().items() for k, v in s.items()}
        results.append((probs, {k: v.detach() for k, v in model.aux_losses().items()}, stats))
    (probs0, losses0, stats0), (probs1, losses1, stats1) = results
    assert not torch.allclose(probs0, probs1)  # the padded positions did route differently
    for key in losses0:
        torch.testing.assert_close(losses0[key], losses1[key], rtol=1e-6, atol=1e-7, msg=key)
    for key in stats0:
        torch.testing.assert_close(stats0[key], stats1[key], rtol=1e-6, atol=1e-7, msg=key)


def test_queue_fills_in_training_forwards_only(base_dir):
    model = trained_like(SparseDoctorModel(load_base(base_dir), config()))
    input_ids, attention_mask = batch()
    model.eval()
    model(input_ids=input_ids, attention_mask=attention_mask)
    assert all(t.sum() == 0 for k, t in model.queue_state_dict().items() if k.endswith(".count"))
    model.train()
    model(input_ids=input_ids, attention_mask=attention_mask)
    counts = [t for k, t in model.queue_state_dict().items() if k.endswith(".count")]
    assert counts and all(c == 2 * 4 for c in counts)  # batch * experts entries per layer
    assert model.aux_losses()["cl"] > 0


def test_training_steps_lower_the_loss(base_dir):
    model = SparseDoctorModel(load_base(base_dir), config()).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    input_ids, attention_mask = batch()
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    losses = []
    for _ in range(8):
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        (out.loss + model.aux_loss()).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] - 0.5


def saved_adapter(base_dir, directory, **overrides):
    model = trained_like(SparseDoctorModel(load_base(base_dir), config(**overrides))).train()
    input_ids, attention_mask = batch()
    model(input_ids=input_ids, attention_mask=attention_mask)  # something in the queues
    model.save_pretrained(directory)
    return model.eval()


CHILD = textwrap.dedent(
    """
    import sys, torch
    from safetensors.torch import load_file, save_file
    from transformers import LlamaForCausalLM
    from sdoc_model.method.model import SparseDoctorModel
    torch.set_num_threads(1)
    base_dir, adapter_dir, io_dir = sys.argv[1:]
    model = SparseDoctorModel.from_pretrained(
        LlamaForCausalLM.from_pretrained(base_dir), adapter_dir
    ).eval()
    inputs = load_file(io_dir + "/inputs.safetensors")
    with torch.no_grad():
        logits = model(**inputs).logits
    save_file({"logits": logits, **model.queue_state_dict()}, io_dir + "/outputs.safetensors")
    """
)


def test_save_and_reload_in_a_new_process_is_bitwise_identical(base_dir, tmp_path):
    model = saved_adapter(base_dir, tmp_path / "adapter")
    assert (
        sorted(
            p.name for p in (tmp_path / "adapter").iterdir() if p.suffix in (".bin", ".pt", ".pkl")
        )
        == []
    )
    input_ids, attention_mask = batch(seed=5)
    save_file(
        {"input_ids": input_ids, "attention_mask": attention_mask}, tmp_path / "inputs.safetensors"
    )
    subprocess.run(
        [sys.executable, "-c", CHILD, str(base_dir), str(tmp_path / "adapter"), str(tmp_path)],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
    )
    outputs = load_file(tmp_path / "outputs.safetensors")
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.equal(outputs.pop("logits"), expected)
    queues = model.queue_state_dict()  # buffer, labels, write pointer and fill count
    assert queues.keys() == outputs.keys() and all(
        torch.equal(outputs[k], v) for k, v in queues.items()
    )


def test_loading_into_a_base_of_another_shape_names_the_tensor(base_dir, tmp_path):
    saved_adapter(base_dir, tmp_path)
    torch.manual_seed(0)
    other = LlamaForCausalLM(LlamaConfig(**{**TINY, "intermediate_size": 96}))
    with pytest.raises(
        ValueError,
        match=r"tensor model\.layers\.0\.mlp\.gate_proj\.lora_B has shape \(4, 128, 4\), "
        r"the model expects \(4, 96, 4\)",
    ):
        SparseDoctorModel.from_pretrained(other, tmp_path)
    deeper = LlamaForCausalLM(LlamaConfig(**{**TINY, "num_hidden_layers": 5}))
    with pytest.raises(
        ValueError, match=r"missing tensor model\.layers\.4\.mlp\.down_proj\.lora_A"
    ):
        SparseDoctorModel.from_pretrained(deeper, tmp_path)


@pytest.mark.parametrize("file", [ADAPTER_WEIGHTS_NAME, MEMORY_QUEUES_NAME])
def test_missing_or_extra_tensors_are_named(base_dir, tmp_path, file):
    saved_adapter(base_dir, tmp_path)
    tensors = load_file(tmp_path / file)
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, tmp_path / file)
    with pytest.raises(ValueError, match=f"{file}: missing tensor {dropped.replace('.', '[.]')}$"):
        SparseDoctorModel.from_pretrained(load_base(base_dir), tmp_path)
    save_file({**tensors, "model.layers.0.stray": torch.zeros(1)}, tmp_path / file)
    with pytest.raises(ValueError, match=f"{file}: unexpected tensor model.layers.0.stray"):
        SparseDoctorModel.from_pretrained(load_base(base_dir), tmp_path)


def test_transformers_auto_class_loads_the_adapter_folder(base_dir, tmp_path):
    model = saved_adapter(base_dir, tmp_path)
    input_ids, attention_mask = batch(seed=3)
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=True)
        assert type(loaded) is LlamaForCausalLM and not loaded.training
        assert torch.equal(
            loaded(input_ids=input_ids, attention_mask=attention_mask).logits, expected
        )
        # lm-eval's keyword arguments, with a bf16 base under the float32 adapter.
        loaded = AutoModelForCausalLM.from_pretrained(
            tmp_path, trust_remote_code=True, dtype=torch.bfloat16, revision="main", subfolder="",
            low_cpu_mem_usage=True, gguf_file=None, quantization_config=None,
            device_map={"": "cpu"},
        )  # fmt: skip
        bf16_wrapper = SparseDoctorModel.from_pretrained(
            load_base(base_dir, dtype=torch.bfloat16), tmp_path
        ).eval()
        logits = loaded(input_ids=input_ids, attention_mask=attention_mask).logits
        assert (
            loaded.model.embed_tokens.weight.dtype == torch.bfloat16
            and logits.dtype == torch.bfloat16
        )
        assert torch.equal(
            logits, bf16_wrapper(input_ids=input_ids, attention_mask=attention_mask).logits
        )


def test_stock_lm_eval_evaluates_the_adapter_folder(base_dir, tmp_path):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(TINY["vocab_size"] - 2)} | {"[UNK]": 254, "[EOS]": 255}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="[EOS]"
    )
    model = trained_like(SparseDoctorModel(load_base(base_dir), config())).eval()
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    lm = HFLM(pretrained=str(tmp_path), trust_remote_code=True, device="cpu", batch_size=1)
    assert any(isinstance(m, LoRAMoELinear) for m in lm.model.modules())
    ((loglikelihood, _),) = lm.loglikelihood(
        [Instance("loglikelihood", {}, ("w1 w2 w3", " w4"), 0)]
    )
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert math.isclose(loglikelihood, logits[0, -1].log_softmax(-1)[4].item(), rel_tol=1e-5)
