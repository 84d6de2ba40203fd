"""Training on the tiny model: every variant learns, runs resume bit for bit after SIGKILL, a
NaN stops the run, and two gloo processes follow the one-process loss curve."""

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from sdoc_model.train.loop import train
from sdoc_model.train.trainer import KILL_AFTER_STEP_ENV, NonFiniteLossError
from sdoc_model.utils.jsonl import write_jsonl
from tests.factories import train_row

ADAPTER = {"num_experts": 4, "rank": 4, "top_k": 2, "alpha": 8, "dropout": 0.0, "queue_size": 16}
TRAINING = {
    "max_steps": 10,
    "batch_size": 4,
    "lr": 1e-2,
    "warmup_steps": 0,
    "max_length": 96,
    "save_every": 4,
    "keep_last": 2,
}
QUESTIONS = [
    "急性心肌梗死最常见的死亡原因是？",
    "糖尿病的典型症状包括：",
    "DNA 复制的方向是？",
    "ATP 的主要来源是？",
]
# Like the workflow's training processes: one thread each, so that runs compare bit for bit.
SINGLE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    rows = [
        train_row(
            i,
            f"{i}. {QUESTIONS[i % 4]}",
            options=["心律失常", "多饮", "5' 到 3'", "线粒体"],
            subject="临床",
        )
        for i in range(16)
    ]
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_jsonl(path, rows)
    return path


def run(tiny_model_dir, train_file, root, variant, adapter=None, training=None):
    return train(
        variant, tiny_model_dir, train_file, root / "model", root / "logs", root / "checkpoints",
        adapter={**ADAPTER, **(adapter or {})}, training={**TRAINING, **(training or {})},
    )  # fmt: skip


def read_metrics(root):
    return [json.loads(line) for line in (root / "logs" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "variant", ["lora", "lora_moe_dense", "lora_moe", "sparsedoctor_noqueue", "sparsedoctor"]
)
def test_every_variant_trains(tiny_model_dir, train_file, tmp_path, variant):
    summary = run(tiny_model_dir, train_file, tmp_path, variant)

    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == list(range(1, 11))
    lm_losses = [m["lm_loss"] for m in metrics]
    assert sum(lm_losses[-3:]) / 3 < lm_losses[0] - 0.5, lm_losses
    assert all(
        m["loss"] > 0 and m["tokens_per_s"] > 0 and m["peak_memory_bytes"] > 0 for m in metrics
    )
    assert (metrics[0]["cl_loss"] is not None) == variant.startswith("sparsedoctor")
    if variant == "lora":
        assert "expert_load" not in metrics[0] and metrics[0]["lb_loss"] is None
    else:
        assert metrics[0]["lb_loss"] > 0 and set(metrics[0]["router_entropy"]) == set(
            metrics[0]["expert_load"]
        )
        for layer in metrics[0]["expert_load"]:
            total_load = torch.tensor([m["expert_load"][layer] for m in metrics]).sum(dim=0)
            assert (total_load > 0).all(), f"{layer}: an expert got no token in the whole run"
            assert metrics[0]["expert_load"][layer] == pytest.approx([0.25] * 4, abs=0.25)

    assert summary == json.loads((tmp_path / "logs" / "summary.json").read_text())
    cuda = torch.cuda.is_available()
    assert (
        summary["steps"] == 10
        and summary["variant"] == variant
        and summary["config"]["training"]["lr"] == 1e-2
    )
    assert summary["precision"] == ("bf16" if cuda else "fp32")
    assert summary["peak_memory_kind"] == (
        "cuda_max_memory_allocated" if cuda else "process_max_rss"
    )
    assert 0 < summary["trainable_params"] < summary["total_params"] and summary["tokens"] > 0
    repo = os.path.dirname(__file__)
    head = subprocess.run(
        ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert summary["git"]["commit"] == head.strip()  # the code that made it
    assert summary["packages"]["torch"] == torch.__version__
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-000004",
        "step-000008",
    ]
    weights = "adapter_model.safetensors"
    assert (tmp_path / "model" / weights).is_file() and (
        tmp_path / "model" / "tokenizer.json"
    ).is_file()


# Dropout and router jitter make the run depend on restored RNG states; the queue on its state.
RESUMED = {
    "adapter": {**ADAPTER, "dropout": 0.1, "router_jitter": 0.1},
    "training": {**TRAINING, "max_steps": 8, "save_every": 2, "keep_last": 3},
}


def killed_after(step, tiny_model_dir, train_file, root, settings):
    """A training process SIGKILLed right after `step`, its outputs cleaned up as Snakemake
    does with a failed job's."""
    config = root.parent / f"{root.name}.yaml"
    config.write_text(json.dumps(settings))  # JSON is YAML
    command = [
        sys.executable, "-m", "sdoc_model.train", "--variant", "sparsedoctor",
        "--base-model", str(tiny_model_dir), "--train-file", str(train_file),
        "--model-dir", str(root / "model"), "--log-dir", str(root / "logs"),
        "--checkpoint-dir", str(root / "checkpoints"), "--config", str(config),
    ]  # fmt: skip
    result = subprocess.run(
        command, env={**SINGLE_THREAD, KILL_AFTER_STEP_ENV: str(step)}, capture_output=True,
        text=True, start_new_session=True,
    )  # fmt: skip
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert [m["step"] for m in read_metrics(root)] == list(range(1, step + 1))
    assert not (root / "model").exists()
    (root / "logs" / "metrics.jsonl").unlink()


def assert_same_run(reference, resumed, first_resumed_step):
    """Same metrics from the resumed step on (timings aside), same adapter and queues."""
    skip = first_resumed_step - 1
    assert [m["step"] for m in read_metrics(resumed)] == list(range(1, 9))
    assert read_metrics(resumed)[skip:] == [
        {**m, "tokens_per_s": r["tokens_per_s"], "peak_memory_bytes": r["peak_memory_bytes"]}
        for m, r in zip(read_metrics(reference)[skip:], read_metrics(resumed)[skip:], strict=True)
    ]
    for name in ("adapter_model.safetensors", "memory_queues.safetensors"):
        expected = load_file(reference / "model" / name)
        actual = load_file(resumed / "model" / name)
        assert expected.keys() == actual.keys()
        assert all(torch.equal(expected[key], actual[key]) for key in expected), name


@pytest.fixture(scope="module")
def reference_run(tiny_model_dir, train_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as single_thread does, which module fixtures run before
    try:
        run(tiny_model_dir, train_file, root, "sparsedoctor", **RESUMED)
    finally:
        torch.set_num_threads(threads)
    return root


def test_sigkill_then_resume_is_bitwise_identical(
    tiny_model_dir, train_file, tmp_path, reference_run
):
    killed_after(6, tiny_model_dir, train_file, tmp_path, RESUMED)
    run(tiny_model_dir, train_file, tmp_path, "sparsedoctor", **RESUMED)  # resumes from step 6
    assert_same_run(reference_run, tmp_path, 7)


def test_resume_with_grouped_batches_and_activation_checkpointing_is_bitwise_identical(
    tiny_model_dir, train_file, tmp_path
):
    switches = {**RESUMED["training"], "group_by_length": True, "gradient_checkpointing": True}
    settings = {**RESUMED, "training": switches}
    run(tiny_model_dir, train_file, tmp_path / "reference", "sparsedoctor", **settings)
    killed_after(6, tiny_model_dir, train_file, tmp_path / "resumed", settings)
    run(tiny_model_dir, train_file, tmp_path / "resumed", "sparsedoctor", **settings)
    assert_same_run(tmp_path / "reference", tmp_path / "resumed", 7)


class Payload:
    """What a planted pickle would run on load: it makes a folder."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_damaged_checkpoints_are_skipped_and_planted_pickles_never_run(
    tiny_model_dir, train_file, tmp_path, reference_run, capsys
):
    killed_after(6, tiny_model_dir, train_file, tmp_path, RESUMED)
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "step-000002", "step-000004", "step-000006",
    ]  # fmt: skip
    # Newest: a truncated file. Next: a pickle payload in place of the trainer state, its
    # manifest entry updated to match, as someone who planted it would.
    truncated = checkpoints / "step-000006" / "rank0.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:-50])
    marker = tmp_path / "payload-ran"
    planted = checkpoints / "step-000004" / "trainer.safetensors"
    planted.write_bytes(pickle.dumps({"optimizer": Payload(marker)}))
    manifest = json.loads((checkpoints / "step-000004" / "manifest.json").read_text())
    manifest[planted.name] = {
        "bytes": planted.stat().st_size,
        "sha256": hashlib.sha256(planted.read_bytes()).hexdigest(),
    }
    (checkpoints / "step-000004" / "manifest.json").write_text(json.dumps(manifest))

    run(tiny_model_dir, train_file, tmp_path, "sparsedoctor", **RESUMED)

    out = capsys.readouterr().out
    assert f"skipping damaged checkpoint step-000006: {truncated}: " in out and "truncated" in out
    assert f"skipping damaged checkpoint step-000004: {planted}: " in out
    assert f"resuming from {checkpoints / 'step-000002'}" in out
    assert not marker.exists()
    assert {p.name for p in checkpoints.iterdir()} == {
        "step-000004", "step-000006", "step-000008", "step-000004.corrupt",  # the last set aside
    }  # fmt: skip
    assert_same_run(reference_run, tmp_path, 3)


def test_nan_loss_stops_keeps_the_last_good_checkpoint_and_gives_advice_that_works(
    tiny_model_dir, train_file, tmp_path, monkeypatch
):
    cross_entropy = torch.nn.functional.cross_entropy
    calls = []

    def poisoned_after_five_steps(*args, **kwargs):
        calls.append(1)
        loss = cross_entropy(*args, **kwargs)
        return loss * float("nan") if len(calls) > 5 else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", poisoned_after_five_steps)
    checkpoints = tmp_path / "checkpoints"
    nan_run = {"save_every": 2, "keep_last": 1}
    with pytest.raises(NonFiniteLossError) as stopped:
        run(tiny_model_dir, train_file, tmp_path, "lora_moe", training=nan_run)
    message = str(stopped.value)
    assert message.startswith("step 6: the loss is nan") and "step-000004" in message
    assert f"delete {checkpoints} and rerun" in message
    assert [p.name for p in checkpoints.iterdir()] == ["step-000004"]
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2, 3, 4, 5]
    assert not (tmp_path / "model").exists()

    # The advice, followed: a lower rate is refused while the checkpoint is there, then trains.
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", cross_entropy)
    lower = {**nan_run, "lr": TRAINING["lr"] / 10}
    with pytest.raises(ValueError, match=r"other settings: training.lr"):
        run(tiny_model_dir, train_file, tmp_path, "lora_moe", training=lower)
    shutil.rmtree(checkpoints)
    assert run(tiny_model_dir, train_file, tmp_path, "lora_moe", training=lower)["steps"] == 10


def test_two_gloo_processes_follow_the_one_process_curve(tiny_model_dir, train_file, tmp_path):
    # SparseDoctor with every loss on, weighted up: the router and contrastive losses and the
    # memory queues cover the global batch of both processes, as they do in one process.
    settings = {
        "adapter": {"lb_weight": 0.1, "z_weight": 0.01, "cl_weight": 0.5},
        "training": {"max_steps": 4, "grad_accum": 2, "save_every": 2},
    }
    one = run(tiny_model_dir, train_file, tmp_path / "one", "sparsedoctor", **settings)
    two = run(
        tiny_model_dir, train_file, tmp_path / "two", "sparsedoctor",
        settings["adapter"], {**settings["training"], "num_processes": 2},
    )  # fmt: skip

    assert two["num_processes"] == 2 and two["tokens"] == one["tokens"]
    for single, double in zip(
        read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two"), strict=True
    ):
        for loss in ("lm_loss", "lb_loss", "z_loss", "cl_loss"):
            assert double[loss] == pytest.approx(single[loss], rel=1e-5), loss
        for layer, load in single["expert_load"].items():
            assert double["expert_load"][layer] == pytest.approx(load, abs=1e-5)
            assert double["router_entropy"][layer] == pytest.approx(
                single["router_entropy"][layer], rel=1e-5
            )
    # Adam turns float noise in near-zero gradients into lr-sized steps: up to ~1e-4 here, while
    # per-process routing losses put the adapters ~2e-2 apart.
    expected = load_file(tmp_path / "one" / "model" / "adapter_model.safetensors")
    actual = load_file(tmp_path / "two" / "model" / "adapter_model.safetensors")
    assert all(torch.allclose(expected[key], actual[key], atol=3e-4) for key in expected)
    # The queues hold the same rows in the same slots: both processes enqueue the global batch.
    expected = load_file(tmp_path / "one" / "model" / "memory_queues.safetensors")
    actual = load_file(tmp_path / "two" / "model" / "memory_queues.safetensors")
    assert expected.keys() == actual.keys()
    for key, tensor in expected.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, actual[key], atol=1e-4), key
        else:  # labels, write pointer, fill count
            assert torch.equal(tensor, actual[key]), key
