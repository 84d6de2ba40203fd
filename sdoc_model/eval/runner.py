"""Evaluate a model on a profile's tasks with lm-eval, each task exactly as the stock CLI would.

Every checkpoint the workflow produces loads in the stock ``lm_eval`` CLI, so this module
only chooses the ``--model_args`` for a model and runs lm-eval's own ``simple_evaluate``
with this project's tasks, one task after the other on one loaded model (an Evaluator: model
loading and lm-eval's start-up are paid once per model). Each task's shell command is stored
with its results, and its per-question records beside them (sdoc_model.eval.records).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdoc_model.data.download import sha256_file
from sdoc_model.data.prepare import normalised_path
from sdoc_model.eval.records import question_records
from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.variants import VARIANTS
from sdoc_model.profile import ModelSpec
from sdoc_model.utils.allocator import keep_freed_memory
from sdoc_model.utils.atomic import write_text
from sdoc_model.utils.jsonl import write_jsonl
from sdoc_model.utils.provenance import REPO_ROOT, git_state
from sdoc_model.utils.tensor_files import CorruptFileError, load_tensors

TASKS_DIR = Path(__file__).resolve().parents[2] / "tasks"


def resolve_dtype(dtype: str) -> str:
    """``auto`` means bfloat16 on a GPU and float32 on the CPU, where bf16 matmuls are slow."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if torch.cuda.is_available() else "float32"


def model_args(spec: ModelSpec, base_model_dir: Path, model_dir: Path | None, dtype: str) -> str:
    """The ``--model_args`` string that loads ``spec`` in lm-eval's ``hf`` model."""
    if spec.kind == "external":
        args = f"pretrained={spec.model_id}"
        if spec.revision:
            args += f",revision={spec.revision}"
        if spec.trust_remote_code:
            args += ",trust_remote_code=True"
    elif spec.kind == "base":
        args = f"pretrained={base_model_dir}"
    elif VARIANTS[spec.variant].kind == "lora":
        args = f"pretrained={base_model_dir},peft={model_dir}"
    else:  # LoRA-MoE checkpoints describe themselves: config.json names their loader code
        args = f"pretrained={model_dir},trust_remote_code=True"
    return f"{args},dtype={resolve_dtype(dtype)}"


def check_adapter_files(model_dir: Path) -> None:
    """lm-eval's `peft=` path reads adapter files unchecked: check their sha256 and values first
    (SparseDoctor's own loader checks them itself), and refuse pickle-based weight files, which
    peft would read in place of a missing safetensors file."""
    model_dir = Path(model_dir)
    for path in sorted([*model_dir.glob("*.bin"), *model_dir.glob("*.pt")]):
        raise CorruptFileError(f"{path}: a pickle-based weight file; this project writes none")
    for path in sorted(model_dir.glob("*.safetensors")):
        load_tensors(path)


def cli_command(
    args: str, task: str, num_fewshot: int | None, limit: int | None, batch_size,
    chat_template: bool = False,
) -> str:  # fmt: skip
    """The stock CLI call that reproduces one evaluation."""
    command = [
        "lm_eval", "--model", "hf", "--model_args", args, "--include_path", "tasks",
        "--tasks", task, "--batch_size", str(batch_size),
    ]  # fmt: skip
    if chat_template:
        command.append("--apply_chat_template")
    if num_fewshot is not None:
        command += ["--num_fewshot", str(num_fewshot)]
    if limit is not None:
        command += ["--limit", str(limit)]
    return shlex.join(command)


@dataclass
class Evaluator:
    """lm-eval's ``hf`` model loaded once from ``--model_args``, and a task manager that knows
    only this project's tasks (indexing lm-eval's thousands of built-in ones costs ~15 s)."""

    model: Any
    manager: Any
    args: str
    batch_size: int | str
    device: str

    @classmethod
    def open(cls, args: str, batch_size: int | str = 8) -> Evaluator:
        from lm_eval.api.registry import get_model
        from lm_eval.tasks import TaskManager

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = get_model("hf").create_from_arg_string(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
        manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
        return cls(model, manager, args, batch_size, device)

    def evaluate(
        self, task: str, num_fewshot: int | None, limit: int | None, seed: int,
        chat_template: bool = False,
    ) -> dict:  # fmt: skip
        """One task, exactly as the stock CLI would score it alone (model_args, batch size and
        device only go into lm-eval's record: the model is built)."""
        import lm_eval

        return lm_eval.simple_evaluate(
            model=self.model, model_args=self.args, tasks=[task], num_fewshot=num_fewshot,
            limit=limit, batch_size=self.batch_size, device=self.device, log_samples=True,
            task_manager=self.manager, random_seed=seed, numpy_random_seed=seed,
            torch_random_seed=seed, fewshot_random_seed=seed,
            apply_chat_template=chat_template,
        )  # fmt: skip


def evaluate_tasks(
    args: str,
    outputs: dict[str, Path],
    data_dir: Path,
    num_fewshot: dict[str, int] | None = None,
    limit: dict[str, int] | None = None,
    batch_size: int | str = 8,
    seed: int = 0,
    chat_template: bool = False,
) -> None:
    """Score every task of `outputs` (task -> result file) with one model load in this
    process. Each task is its own lm-eval run and writes its aggregated results JSON (with the
    command that reproduces it, the sha256 of the normalised files it scored and the git state
    of this code) and its per-question records beside it. `num_fewshot` and `limit` map task
    names to lm-eval's settings of the same name; a task not named gets lm-eval's default.
    `chat_template` wraps the prompts in the model's chat template (lm-eval's
    --apply_chat_template)."""
    os.environ["SDOC_DATA_DIR"] = str(Path(data_dir).resolve())
    keep_freed_memory()  # every batch reallocates the same large buffers: no page faults each time
    evaluator = Evaluator.open(args, batch_size)
    git = git_state(REPO_ROOT)  # the code's checkout (lm-eval's git_hash is the working dir's)
    for task, out_path in outputs.items():
        shots, task_limit = (num_fewshot or {}).get(task), (limit or {}).get(task)
        results = evaluator.evaluate(task, shots, task_limit, seed, chat_template)
        files = [normalised_path(name, Path(data_dir)) for name in TASKS[task].datasets.values()]
        results["sdoc"] = {
            "command": cli_command(args, task, shots, task_limit, batch_size, chat_template),
            "chat_template": chat_template,
            "normalised_sha256": {path.name: sha256_file(path) for path in files},
            "git": git,
        }
        write_results(results, task, Path(out_path))


def questions_path(result_path: Path) -> Path:
    """Where the per-question records of a result file go: `<task>.questions.jsonl` beside it."""
    return result_path.with_name(f"{result_path.stem}.questions.jsonl")


def write_results(results: dict, task: str, out_path: Path) -> None:
    """lm-eval's aggregated results (its samples left out) and the per-question records."""
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples")
    records = [
        record
        for leaf, leaf_samples in samples.items()
        for record in question_records(leaf, leaf_samples, TASKS[task].generative)
    ]
    write_jsonl(questions_path(out_path), records)
    text = json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False)
    write_text(out_path, text)
