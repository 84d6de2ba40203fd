"""The speed and memory switches leave training as it was (tiny model, CPU, float32):
activation checkpointing and the attention kernel change no loss beyond float noise, nor
checkpointing a memory-queue row; length-grouped micro-batches pad less, visit every example
once per epoch, and padding changes no loss."""

import numpy as np
import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaMLP

from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.train.config import RunPaths, TrainingConfig
from sdoc_model.train.data import (
    IGNORE_INDEX,
    StepData,
    epoch_order,
    micro_batch_indices,
    step_data,
)
from sdoc_model.train.distributed import Processes
from sdoc_model.train.trainer import Trainer
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import train_row

# Dropout and router jitter: a recomputed forward must draw the random numbers it drew first.
ADAPTER = {
    "num_experts": 4, "rank": 4, "top_k": 2, "alpha": 8, "dropout": 0.1, "router_jitter": 0.1,
    "queue_size": 16,
}  # fmt: skip
TRAINING = {"batch_size": 4, "grad_accum": 2, "lr": 1e-2, "max_length": 192}
LOSSES = ("lm_loss", "lb_loss", "z_loss", "cl_loss", "loss")
VARIANTS = ["lora", "sparsedoctor"]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    """Questions of 1 to 6 clauses: examples of 66 to 167 tokens."""
    rows = [train_row(i, "患者反复上腹痛，" * (1 + i % 6) + f"第{i}题？") for i in range(24)]
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_jsonl(path, rows)
    return path


def make_trainer(tiny_model_dir, train_file, root, variant, adapter=None, **training) -> Trainer:
    paths = RunPaths(tiny_model_dir, train_file, root / "model", root / "logs", root / "ckpt")
    return Trainer(
        variant, paths, SparseDoctorConfig.from_dict({**ADAPTER, **(adapter or {})}),
        TrainingConfig.from_dict({**TRAINING, **training}), variant,
        Processes(0, 1, torch.device("cpu")),
    )  # fmt: skip


def first_steps(trainer: Trainer, steps: int = 3) -> list[dict]:
    return [trainer.step(step)[0] for step in range(steps)]


def assert_same_losses(expected: list[dict], actual: list[dict]) -> None:
    for want, got in zip(expected, actual, strict=True):
        for key in LOSSES:
            if want[key] is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-5, abs=0), (key, want["step"])


@pytest.fixture
def mlp_forwards(monkeypatch):
    """How many times the decoder layers' MLPs ran forward (module hooks miss recomputations)."""
    calls = []
    forward = LlamaMLP.forward

    def counted(self, x):
        calls.append(1)
        return forward(self, x)

    monkeypatch.setattr(LlamaMLP, "forward", counted)
    return calls


@pytest.mark.parametrize("variant", VARIANTS)
def test_activation_checkpointing_changes_no_loss_and_no_queue_row(
    tiny_model_dir, train_file, tmp_path, variant, mlp_forwards
):
    plain = make_trainer(tiny_model_dir, train_file, tmp_path / "plain", variant)
    expected = first_steps(plain)
    forwards = len(mlp_forwards)
    checkpointed = make_trainer(
        tiny_model_dir, train_file, tmp_path / "ckpt", variant, gradient_checkpointing=True
    )
    actual = first_steps(checkpointed)

    assert len(mlp_forwards) - forwards == 2 * forwards  # each forward recomputed in backward
    assert_same_losses(expected, actual)
    if variant == "sparsedoctor":  # enqueued once per forward, the same rows
        want, got = plain.model.queue_state_dict(), checkpointed.model.queue_state_dict()
        assert want.keys() == got.keys() and want
        assert all(torch.equal(want[key], got[key]) for key in want)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sdpa_and_eager_attention_give_the_same_losses(
    tiny_model_dir, train_file, tmp_path, variant
):
    runs = {}
    for kernel in ("sdpa", "eager"):
        trainer = make_trainer(
            tiny_model_dir, train_file, tmp_path / kernel, variant, attn_implementation=kernel
        )
        attention = next(m for m in trainer.model.modules() if type(m).__name__ == "LlamaAttention")
        assert attention.config._attn_implementation == kernel
        runs[kernel] = first_steps(trainer)
    assert_same_losses(runs["sdpa"], runs["eager"])


def padded(data: StepData, extra: int, pad_id: int) -> StepData:
    """The same micro-batches, `extra` padding columns wider (per-row tensors as they are)."""
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}
    wider = [
        {
            key: torch.nn.functional.pad(tensor, (0, extra), value=fill[key])
            if key in fill
            else tensor
            for key, tensor in b.items()
        }
        for b in data.micro_batches
    ]
    return StepData(wider, data.response_tokens, data.real_tokens, data.local_real_tokens)


def test_padding_changes_no_loss(tiny_model_dir, train_file, tmp_path):
    """What length grouping saves is padding only: the same examples padded wider give the same
    LM loss, routing losses and statistics."""
    trainer = make_trainer(
        tiny_model_dir, train_file, tmp_path, "sparsedoctor", {"dropout": 0.0, "router_jitter": 0.0}
    )
    data = step_data(trainer.examples, 0, 0, 4, 2, 0, 1, trainer.pad_id)
    queues = {key: tensor.clone() for key, tensor in trainer.model.queue_state_dict().items()}
    tight = trainer.forward_backward(data)
    trainer.model.load_queue_state_dict(queues)  # the second pass sees the same memory bank
    wide = trainer.forward_backward(padded(data, 16, trainer.pad_id))
    assert torch.allclose(wide, tight, rtol=1e-5, atol=0)


def padding_and_order(lengths, batch_size, micro_steps, grouped):
    order, padding = [], 0
    for micro in range(micro_steps):
        indices = micro_batch_indices(
            len(lengths), 1, batch_size, micro, lengths if grouped else None
        )
        order += indices
        padding += batch_size * max(lengths[i] for i in indices) - sum(lengths[i] for i in indices)
    return order, padding


def test_length_grouping_pads_less_and_visits_every_example_once_per_epoch():
    lengths = tuple(int(n) for n in np.random.default_rng(0).integers(10, 500, size=1003))
    size, batch_size, epochs = len(lengths), 8, 3
    micro_steps = epochs * size // batch_size + 1  # epochs start mid-micro-batch: 1003 % 8 = 3
    grouped, grouped_padding = padding_and_order(lengths, batch_size, micro_steps, True)
    plain, plain_padding = padding_and_order(lengths, batch_size, micro_steps, False)

    for epoch in range(epochs):
        assert sorted(grouped[epoch * size : (epoch + 1) * size]) == list(range(size))
    assert grouped != plain
    assert grouped_padding < plain_padding / 20, (grouped_padding, plain_padding)
    # A pure function of the seed and the micro-step: what a resumed run reads again.
    epoch_order.cache_clear()
    assert micro_batch_indices(size, 1, batch_size, 300, lengths) == grouped[2400:2408]
    assert micro_batch_indices(size, 2, batch_size, 300, lengths) != grouped[2400:2408]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lm_head_only_at_labelled_positions_gives_the_full_logits_loss(tiny_model_dir, variant):
    """The trainer's LM loss (LM head at the labelled positions only) equals cross-entropy over
    the full logits, on right-padded rows whose responses end at different positions."""
    from transformers import AutoModelForCausalLM

    from sdoc_model.method.variants import build_model
    from sdoc_model.train.trainer import lm_loss_sum

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = build_model(variant, base, SparseDoctorConfig(**ADAPTER)).eval()
    input_ids = torch.randint(3, base.config.vocab_size, (3, 24))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 17:] = attention_mask[2, 9:] = 0
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, length in enumerate(attention_mask.sum(dim=1).tolist()):
        labels[row, length - 3 : length] = input_ids[row, length - 3 : length]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        full = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
            ignore_index=IGNORE_INDEX, reduction="sum",
        )  # fmt: skip
        assert lm_loss_sum(model, batch).item() == pytest.approx(full.item(), rel=1e-6)
