"""One training run: the data, the model and its optimizer, the loop, checkpoints and the end.

The LM loss is a mean over every response token of the optimizer step, on all processes
together, so N processes with batch b/N each follow the same curve as one process with batch b.
The router and contrastive losses and the memory queues cover the global micro-batch too:
the layers gather over processes (sdoc_model.method.losses), so every process computes the same
auxiliary losses and enqueues the same rows.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoTokenizer, get_scheduler

from sdoc_model.base_models.prepare import save_model_folder
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.model import ADAPTER_WEIGHTS_NAME, SparseDoctorModel
from sdoc_model.method.variants import variant_config
from sdoc_model.train import distributed
from sdoc_model.train.build import build_run_model, device_name, resolve_precision, wrap_ddp
from sdoc_model.train.checkpoint import (
    NOT_CHECKED_ON_RESUME,
    check_same_settings,
    checkpoints_newest_first,
    load_checkpoint,
    load_trainable_state,
    remove_partial_checkpoints,
    save_checkpoint,
    set_aside,
    trainable_state,
)
from sdoc_model.train.config import SCHEDULERS, RunPaths, TrainingConfig
from sdoc_model.train.data import (
    IGNORE_INDEX,
    StepData,
    example_lengths,
    load_sft_examples,
    step_data,
)
from sdoc_model.train.distributed import Processes
from sdoc_model.train.metrics import (
    METRIC_KEYS,
    MetricsLog,
    micro_step_sums,
    peak_memory,
    step_record,
)
from sdoc_model.utils.atomic import write_text
from sdoc_model.utils.provenance import REPO_ROOT, git_state, software
from sdoc_model.utils.tensor_files import CorruptFileError

# Tests: SIGKILL this process's group right after that step (and its checkpoint): the training
# process alone when started in a group of its own, the whole workflow under Snakemake.
KILL_AFTER_STEP_ENV = "SDOC_TRAIN_KILL_AFTER_STEP"


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite (a value the data or settings produced): the run stopped
    before the optimizer step."""


def lm_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy summed over the labelled tokens, the batch's other tensors
    passed to the model. The LM head runs only at the positions that predict a label (in
    fine-tuning data, each example's few response tokens): its logits and their log-softmax
    over the whole vocabulary at every prompt token would cost a fifth of the step and a
    (batch, length, vocabulary) tensor for nothing."""
    targets = batch["labels"][:, 1:]
    positions = (targets != IGNORE_INDEX).any(dim=0).nonzero().flatten()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    logits = model(**inputs, logits_to_keep=positions).logits
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets[:, positions].flatten(),
        ignore_index=IGNORE_INDEX, reduction="sum",
    )  # fmt: skip


@dataclass(frozen=True)
class Progress:
    """How far the run is; saved in every checkpoint, summed over resumed segments."""

    step: int = 0
    tokens: int = 0
    wall_time_s: float = 0.0
    peak_memory_bytes: int = 0


class Trainer:
    """One run: the data, the model and its optimizer, and where everything is written."""

    def __init__(
        self,
        variant: str,
        paths: RunPaths,
        adapter_config: SparseDoctorConfig,
        config: TrainingConfig,
        model_name: str,
        processes: Processes,
    ):
        self.variant, self.paths, self.config = variant, paths, config
        self.model_name, self.processes = model_name, processes
        self.precision = resolve_precision(config.precision, processes.device)
        self.tokenizer = AutoTokenizer.from_pretrained(paths.base_model)
        pad_id = self.tokenizer.pad_token_id
        self.pad_id = pad_id if pad_id is not None else self.tokenizer.eos_token_id
        self.examples = load_sft_examples(
            paths.train_file, self.tokenizer, config.max_length, config.include_explanation
        )
        self.total_steps = config.total_steps(len(self.examples))
        self.lengths = example_lengths(self.examples) if config.group_by_length else None
        self.settings = {
            "variant": variant,
            "adapter": adapter_config.to_dict(),
            "training": config.to_dict(),
        }
        self.effective = variant_config(variant, adapter_config)

        self.model = build_run_model(
            variant, paths.base_model, adapter_config, self.precision, processes, config.seed,
            config.attn_implementation, config.gradient_checkpointing,
        )  # fmt: skip
        self.moe = isinstance(self.model, SparseDoctorModel)
        self.discipline_labels = self.moe and self.effective.discipline_labels
        if self.discipline_labels and all(e.discipline < 0 for e in self.examples):
            raise ValueError(
                f"adapter.cl_labels is discipline, but no row of {paths.train_file} carries a "
                "discipline (its sources have none): use cl_labels: expert or labelled data"
            )
        if self.moe:
            self.model.routing_context.across_processes = processes.distributed
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = get_scheduler(
            SCHEDULERS[config.scheduler], self.optimizer,
            num_warmup_steps=config.warmup_steps, num_training_steps=self.total_steps,
        )  # fmt: skip
        self.ddp_model = wrap_ddp(self.model) if processes.distributed else self.model
        self.autocast = torch.autocast(
            processes.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def fit(self) -> dict:
        progress, checkpoint = self.resume()
        main = self.processes.is_main
        metrics_copy = checkpoint / "metrics.jsonl" if checkpoint else None
        metrics_path = self.paths.log_dir / "metrics.jsonl"
        with (
            MetricsLog(metrics_path, metrics_copy) if main else nullcontext() as metrics,
            tqdm(
                total=self.total_steps, initial=progress.step, desc=self.model_name,
                disable=not main,
            ) as bar,
        ):  # fmt: skip
            for step in range(progress.step, self.total_steps):
                started = time.perf_counter()
                record, tokens = self.step(step)
                if metrics:
                    metrics.write(record)
                bar.update()
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                progress = Progress(
                    step + 1,
                    progress.tokens + tokens,
                    progress.wall_time_s + time.perf_counter() - started,
                    max(progress.peak_memory_bytes, record["peak_memory_bytes"]),
                )
                if progress.step % self.config.save_every == 0:
                    self.save_checkpoint(progress)
                if os.environ.get(KILL_AFTER_STEP_ENV) == str(progress.step):
                    os.killpg(0, signal.SIGKILL)
        return self.finish(progress)

    def step(self, step: int) -> tuple[dict, int]:
        """One optimizer step (0-based `step`); returns its metrics line and its token count."""
        started = time.perf_counter()
        config, processes = self.config, self.processes
        data = step_data(
            self.examples, step, config.seed, config.batch_size, config.grad_accum,
            processes.rank, processes.world_size, self.pad_id, self.lengths,
        )  # fmt: skip
        sums = self.forward_backward(data)
        sums = distributed.sum_over_processes(sums, processes).tolist()  # the step's one host sync
        record = step_record(self.model, self.effective, step + 1, sums, data, processes.world_size)
        stop_if_not_finite(record, self.paths.checkpoint_dir)
        record["lr"] = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        tokens = sum(data.real_tokens)
        record["tokens_per_s"] = tokens / (time.perf_counter() - started)
        record["peak_memory_bytes"] = peak_memory(processes.device)[0]
        return {key: record[key] for key in METRIC_KEYS if key in record}, tokens

    def forward_backward(self, data: StepData) -> torch.Tensor:
        """Accumulate the gradients of this process's share of the step's micro-batches.

        DDP averages gradients over processes, so this process's LM-loss sum is scaled by
        world_size / (response tokens of the whole step). The auxiliary losses are means over
        each global micro-batch (every process computes the same ones, see
        sdoc_model.method.losses), averaged over micro-batches. Returns the detached sums to log
        (see `micro_step_sums`), still on the device.
        """
        self.optimizer.zero_grad(set_to_none=True)
        device, distributed_run = self.processes.device, self.processes.distributed
        lm_scale = self.processes.world_size / data.response_tokens
        micro_steps = len(data.micro_batches)
        sums = []
        for index, batch in enumerate(data.micro_batches):
            batch = {key: tensor.to(device) for key, tensor in batch.items()}
            if not self.discipline_labels:
                del batch["discipline_ids"]
            # Gradients are all-reduced once per optimizer step, on its last micro-batch.
            last = index == micro_steps - 1
            with nullcontext() if last or not distributed_run else self.ddp_model.no_sync():
                with self.autocast:
                    lm_sum = lm_loss_sum(self.ddp_model, batch)
                    aux = self.model.aux_loss() if self.moe else None
                loss = lm_sum * lm_scale + (aux / micro_steps if self.moe else 0)
                loss.backward()
            sums.append(micro_step_sums(self.model, lm_sum, aux, data.local_real_tokens[index]))
        return torch.stack(sums).sum(dim=0)

    def resume(self) -> tuple[Progress, Path | None]:
        """Restore the newest intact checkpoint, if any: how far it got, and its folder.

        A damaged checkpoint (see checkpoint.verify_manifest) is skipped, saying why, and
        renamed `step-N.corrupt` so that it is kept for inspection but never used again.
        """
        checkpoint_dir, processes = self.paths.checkpoint_dir, self.processes
        if processes.is_main:
            remove_partial_checkpoints(checkpoint_dir)
        skipped, restored = [], None
        for path in checkpoints_newest_first(checkpoint_dir):
            try:
                restored = path, *load_checkpoint(path, processes)
                break
            except CorruptFileError as err:
                skipped.append(path)
                self.say(f"skipping damaged checkpoint {path.name}: {err}")
        # Each process checked its own rank file: all must resume from the same step.
        step = restored[-1]["progress"]["step"] if restored else 0
        highest = distributed.max_over_processes(step, processes)
        if -distributed.max_over_processes(-step, processes) != highest:
            raise CorruptFileError(
                f"{checkpoint_dir}: the processes found different newest intact checkpoints "
                f"(this one: step {step}); a rank file is damaged. Delete the damaged "
                "checkpoint (named above) and rerun."
            )
        if processes.is_main:
            for path in skipped:
                set_aside(path)
        if restored is None:
            return Progress(), None
        path, adapter, trainer, process, run_state = restored
        check_same_settings(run_state["settings"], self.settings, path)
        load_trainable_state(self.model, adapter, path / "adapter.safetensors")
        if process["memory_queues"]:
            self.model.load_queue_state_dict(process["memory_queues"], source=str(path))
        self.optimizer.load_state_dict(trainer["optimizer"])
        self.scheduler.load_state_dict(trainer["scheduler"])
        self.say(f"resuming from {path}")
        return Progress(**run_state["progress"]), path

    def say(self, message: str) -> None:
        if self.processes.is_main:
            print(message, flush=True)

    def save_checkpoint(self, progress: Progress) -> None:
        config = self.config
        run_state = {
            "progress": asdict(progress),
            "data_position": {
                "examples_seen": progress.step * config.grad_accum * config.batch_size,
                "seed": config.seed,
            },
            "world_size": self.processes.world_size,
            "settings": self.settings,
        }
        queues = self.model.queue_state_dict() if self.moe else {}
        save_checkpoint(
            self.paths.checkpoint_dir, progress.step, trainable_state(self.model),
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            {"memory_queues": queues}, run_state, self.paths.log_dir / "metrics.jsonl",
            config.keep_last, self.processes,
        )  # fmt: skip

    def finish(self, progress: Progress) -> dict:
        """Write the final adapter and the summary (main process); every process returns it."""
        peak = distributed.max_over_processes(progress.peak_memory_bytes, self.processes)
        wall = max(progress.wall_time_s, 1e-9)
        summary = {
            "model": self.model_name,
            "variant": self.variant,
            "trainable_params": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "total_params": sum(p.numel() for p in self.model.parameters()),
            "steps": progress.step,
            "tokens": progress.tokens,
            "wall_time_s": progress.wall_time_s,
            "tokens_per_s": progress.tokens / wall,
            "step_time_s": wall / max(progress.step, 1),
            "peak_memory_bytes": peak,
            "peak_memory_kind": peak_memory(self.processes.device)[1],
            "device": device_name(self.processes),
            "num_processes": self.processes.world_size,
            "precision": self.precision,
            "config": {"adapter": self.effective.to_dict(), "training": self.config.to_dict()},
            "git": git_state(REPO_ROOT),
            **software(),
        }
        if self.processes.is_main:
            # peft writes LoRA's adapter itself: it gets the sha256 SparseDoctor's files carry.
            sealed = [ADAPTER_WEIGHTS_NAME]
            save_model_folder(self.model, self.tokenizer, self.paths.model_dir, sealed)
            write_text(self.paths.log_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        distributed.barrier(self.processes)
        return summary


def stop_if_not_finite(record: dict, checkpoint_dir: Path) -> None:
    if math.isfinite(record["loss"]):
        return
    terms = ("lm_loss", "lb_loss", "z_loss", "cl_loss")
    losses = ", ".join(f"{key}={record[key]}" for key in terms if record[key] is not None)
    checkpoints = checkpoints_newest_first(checkpoint_dir)
    last_good = checkpoints[0].name if checkpoints else "none was written yet"
    may_change = ", ".join(f"training.{key}" for key in NOT_CHECKED_ON_RESUME)
    raise NonFiniteLossError(
        f"step {record['step']}: the loss is {record['loss']} ({losses}); stopped before the "
        f"optimizer step (last good checkpoint: {last_good}). Training is deterministic, so a "
        "rerun with the same settings stops here again. To try other settings (a lower "
        "training.lr, more training.warmup_steps) or other training data, delete "
        f"{checkpoint_dir} and rerun: a checkpoint resumes only the settings that wrote it "
        f"(except {may_change})."
    )
