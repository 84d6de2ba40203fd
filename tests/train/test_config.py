"""Training settings, validation before any model is loaded, and the SFT data pipeline."""

import subprocess
import sys

import pytest

from sdoc_model.train.cli import main
from sdoc_model.train.config import TrainingConfig, check_target_modules, load_run_config
from sdoc_model.train.data import (
    IGNORE_INDEX,
    collate,
    micro_batch_indices,
    render_example,
    step_data,
    tokenize_example,
)
from sdoc_model.train.loop import train
from tests.factories import schema_row

ROW = schema_row(
    split="train",
    question="急性心肌梗死最常见的死亡原因是？",
    options=["心律失常", "心力衰竭", "心源性休克", "心脏破裂"],
    explanation="室颤最常见。",
)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"lr": -1e-4}, "training.lr"),
        ({"lr": "1e-3"}, "training.lr"),
        ({"batch_size": 0}, "training.batch_size"),
        ({"grad_accum": 1.5}, "training.grad_accum"),
        ({"scheduler": "step"}, "training.scheduler"),
        ({"precision": "fp16"}, "training.precision"),
        ({"warmup_steps": -1}, "training.warmup_steps"),
        ({"max_length": 8}, "training.max_length"),
        ({"epochs": 0}, "training.epochs"),
        ({"batch_size": 3, "num_processes": 2}, "training.batch_size"),
        ({"gradient_checkpointing": 1}, "training.gradient_checkpointing"),
        ({"attn_implementation": "flash_attention_2"}, "training.attn_implementation"),
        ({"group_by_length": "yes"}, "training.group_by_length"),
        ({"learning_rate": 1e-3}, "learning_rate"),
    ],
)
def test_bad_training_values_name_the_key(values, key):
    with pytest.raises(ValueError, match=key):
        TrainingConfig.from_dict(values)


def test_epochs_replace_max_steps():
    config = TrainingConfig(max_steps=5, epochs=2, batch_size=4, grad_accum=2)
    assert config.total_steps(num_examples=20) == 5  # ceil(2 * 20 / 8)
    assert TrainingConfig(max_steps=7).total_steps(num_examples=20) == 7


@pytest.fixture
def no_model_loading(monkeypatch):
    """Make any weight loading fail loudly, so a test shows validation ran before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the settings were validated")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)
    monkeypatch.setattr("sdoc_model.train.build.load_base_model", refuse)


@pytest.mark.parametrize(
    ("variant", "adapter", "training", "message"),
    [
        ("sparsedoctor", {"num_experts": 2, "top_k": 4}, {}, "top_k"),
        ("sparsedoctor", {}, {"lr": -0.1}, "training.lr"),
        ("sparse_doctor", {}, {}, "variant"),
        ("base", {}, {}, "variant"),
        (
            "lora",
            {"target_modules": ["q_proj", "qkv_proj"]},
            {},
            "adapter.target_modules: qkv_proj",
        ),
        ("lora_moe", {"expert_count": 4}, {}, "expert_count"),
    ],
)
def test_bad_settings_are_rejected_before_loading(
    tiny_model_dir, tmp_path, no_model_loading, variant, adapter, training, message
):
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("{}\n")
    with pytest.raises(ValueError, match=message):
        train(
            variant,
            tiny_model_dir,
            train_file,
            tmp_path / "m",
            tmp_path / "l",
            tmp_path / "c",
            adapter,
            training,
        )


def test_target_modules_are_checked_without_weights(tiny_model_dir):
    check_target_modules(tiny_model_dir, ["q_proj", "down_proj"])
    with pytest.raises(ValueError, match="adapter.target_modules: attn"):
        check_target_modules(tiny_model_dir, ["attn"])


def test_cli_reports_bad_settings_by_key(tiny_model_dir, tmp_path, no_model_loading, cli_error):
    config = tmp_path / "config.yaml"
    config.write_text(
        "seeds: [3, 4]\nadapter: {num_experts: 4, top_k: 2}\ntraining: {max_steps: 2}\n"
    )
    args = [
        "--variant", "lora_moe", "--base-model", str(tiny_model_dir), "--train-file", str(config),
        "--model-dir", "m", "--log-dir", "l", "--checkpoint-dir", "c", "--config", str(config),
        "--set", "adapter.top_k=8",
    ]  # fmt: skip
    assert "top_k must be <= num_experts" in cli_error(main, args)


def test_config_file_and_overrides(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "seeds: [3, 4]\nadapter: {num_experts: 4}\ntraining: {max_steps: 2, lr: 1.0e-3}\n"
    )
    adapter, training = load_run_config(
        config, ["lr=0.01", "adapter.top_k=1", "training.scheduler=linear"]
    )
    assert adapter == {"num_experts": 4, "top_k": 1}
    assert training == {"max_steps": 2, "lr": 0.01, "seed": 3, "scheduler": "linear"}
    _, training = load_run_config(config, ["seed=5"])
    assert training["seed"] == 5
    with pytest.raises(ValueError, match="model.x"):
        load_run_config(config, ["model.x=1"])


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_loss_only_on_the_response(tokenizer):
    prompt, response = render_example(ROW, include_explanation=False)
    assert prompt.endswith("答案：") and response == " A"
    example = tokenize_example(tokenizer, prompt, response, max_length=512)
    assert tokenizer.decode(example.input_ids) == prompt + response + tokenizer.eos_token
    batch = collate([example], tokenizer.pad_token_id)
    scored = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist()
    assert tokenizer.decode(scored) == response + tokenizer.eos_token


def test_explanation_is_optional_and_follows_the_answer(tokenizer):
    _, response = render_example(ROW, include_explanation=True)
    assert response == " A\n解析：室颤最常见。"
    assert render_example({**ROW, "explanation": None}, include_explanation=True)[1] == " A"


def test_truncation_keeps_the_answer(tokenizer):
    long_row = {**ROW, "question": "很长的病史。" * 100}
    example = tokenize_example(
        tokenizer, *render_example(long_row, include_explanation=True), max_length=64
    )
    assert len(example.input_ids) == 64
    response = tokenizer.decode(example.input_ids[example.prompt_length :])
    assert response.startswith(" A\n解析")


def test_data_order_is_a_function_of_seed_and_epoch():
    first_epoch = [
        i
        for step in range(5)
        for i in micro_batch_indices(10, seed=1, batch_size=2, micro_step=step)
    ]
    assert sorted(first_epoch) == list(range(10))
    second_epoch = [
        i
        for step in range(5, 10)
        for i in micro_batch_indices(10, seed=1, batch_size=2, micro_step=step)
    ]
    assert sorted(second_epoch) == list(range(10)) and second_epoch != first_epoch
    assert micro_batch_indices(10, 1, 2, 7) == micro_batch_indices(10, 1, 2, 7)
    assert micro_batch_indices(10, 2, 10, 0) != micro_batch_indices(10, 1, 10, 0)


def test_processes_split_each_global_micro_batch(tokenizer):
    from sdoc_model.train.data import Example

    examples = [Example(tuple(range(1, 4 + i)), 2) for i in range(7)]
    whole = step_data(
        examples, 3, seed=0, batch_size=4, grad_accum=2, rank=0, world_size=1, pad_id=0
    )
    halves = [
        step_data(examples, 3, seed=0, batch_size=4, grad_accum=2, rank=r, world_size=2, pad_id=0)
        for r in (0, 1)
    ]
    assert halves[0].response_tokens == halves[1].response_tokens == whole.response_tokens
    assert halves[0].real_tokens == whole.real_tokens
    for micro in range(2):
        rows = [
            row[row != 0].tolist()
            for half in halves
            for row in half.micro_batches[micro]["input_ids"]
        ]
        assert rows == [row[row != 0].tolist() for row in whole.micro_batches[micro]["input_ids"]]


def test_the_process_that_starts_torchrun_imports_no_torch():
    """A multi-process job's first process checks the settings and starts torchrun; torch and
    the model code (seconds per training job) are left to the processes that train."""
    code = (
        "import sys; from sdoc_model.train.config import validate_run; "
        "import sdoc_model.profile, sdoc_model.train.launch, sdoc_model.train.loop; "
        "validate_run('sparsedoctor', sys.argv[1], {}, {'num_processes': 2}); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, __file__], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
