"""Check the CUDA paths on a GPU machine: ``python -m sdoc_model.benchmark.cuda_check``.

Builds a model of a registered shape (SmolLM2-135M's by default; random weights, a tokenizer
trained on the data), trains every variant for a few steps with bf16 autocast, checks device
placement and dtypes, runs one lm-eval evaluation of the SparseDoctor checkpoint on the GPU,
and writes every figure to ``--out/cuda_check.json``. Each stage records its own failure and the
next one still runs. Without a GPU it runs the same stages on the CPU (``--shape tiny`` for a
quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from sdoc_model.base_models.prepare import corpus_texts, prepare_tiny_model
from sdoc_model.base_models.shapes import MODEL_SHAPES, SMOLLM2_135M
from sdoc_model.benchmark.evaluation import scored_tasks
from sdoc_model.data.prepare import normalised_path
from sdoc_model.eval.runner import evaluate_tasks, model_args
from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.variants import SPARSEDOCTOR, TRAINED_VARIANTS
from sdoc_model.profile import ModelSpec
from sdoc_model.utils.cli import exit_on_error


def check_placement(model_dir: Path, device: str) -> dict:
    """Load a checkpoint the way lm-eval does, in bf16, and report where it lives."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        model_dir, trust_remote_code=True, dtype=torch.bfloat16
    ).to(device)
    devices = {str(p.device) for p in model.parameters()}
    dtypes = {str(p.dtype) for p in model.parameters()}
    ids = torch.randint(0, model.config.vocab_size, (2, 64), device=device)
    with torch.no_grad():
        logits = model(ids).logits
    return {
        "devices": sorted(devices),
        "dtypes": sorted(dtypes),
        "logits_dtype": str(logits.dtype),
        "logits_finite": bool(torch.isfinite(logits).all()),
    }


def eval_files(data: Path) -> list[Path]:
    """The normalised datasets in `data`, without the quarantined rows beside them."""
    files = sorted((data / "normalised").glob("*.jsonl"))
    return [path for path in files if not path.name.endswith(".quarantine.jsonl")]


def prepared_tasks(data: Path) -> list[str]:
    """The multiple-choice tasks whose datasets `data` holds normalised."""
    return [
        name
        for name in scored_tasks(list(TASKS))
        if all(normalised_path(d, data).is_file() for d in TASKS[name].datasets.values())
    ]


def run_stage(record: dict, name: str, stage) -> None:
    start = time.perf_counter()
    try:
        record[name] = {"ok": True, **stage()}
    except Exception:  # record and go on: one broken stage must not hide the others
        record[name] = {"ok": False, "error": traceback.format_exc()}
    record[name]["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps({name: record[name]}, indent=1), flush=True)


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sdoc_model.benchmark.cuda_check", description=__doc__
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="train.jsonl and normalised/<dataset>.jsonl (a workflow's resources/<profile>/data)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/sdoc_cuda_check"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--limit", type=int, default=100, help="questions of the evaluation")
    parser.add_argument("--shape", choices=MODEL_SHAPES, default=SMOLLM2_135M)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    record: dict = {"device": name, "torch": torch.__version__}
    base = args.work / "base_model"
    train_file = args.data / "train.jsonl"
    training = dict(
        max_steps=args.steps, batch_size=8, grad_accum=1, lr=3e-4, scheduler="cosine",
        warmup_steps=3, max_length=512, precision="auto", save_every=args.steps, keep_last=1,
    )  # fmt: skip

    run_stage(record, "prepare", lambda: {"model": str(prepare_tiny_model(
        base, corpus_texts([train_file, *eval_files(args.data)]),
        vocab_size=8192, shape=args.shape,
    ))})  # fmt: skip

    from sdoc_model.train.loop import train

    for variant in TRAINED_VARIANTS:

        def stage(variant=variant):
            summary = train(
                variant, base, train_file, args.work / "models" / variant,
                args.work / "logs" / variant, args.work / "checkpoints" / variant,
                adapter={"num_experts": 8, "rank": 8, "top_k": 2, "alpha": 16}, training=training,
            )  # fmt: skip
            losses = [
                json.loads(line)["lm_loss"]
                for line in (args.work / "logs" / variant / "metrics.jsonl")
                .read_text()
                .splitlines()
            ]
            return {**summary, "first_lm_loss": losses[0], "last_lm_loss": losses[-1]}

        run_stage(record, f"train_{variant}", stage)

    sparsedoctor = args.work / "models" / SPARSEDOCTOR
    run_stage(record, "placement_bf16", lambda: check_placement(sparsedoctor, device))
    spec = ModelSpec(SPARSEDOCTOR, "trained", SPARSEDOCTOR)
    outputs = {task: args.work / "eval" / f"{task}.json" for task in prepared_tasks(args.data)}

    def evaluation():
        evaluate_tasks(
            model_args(spec, base, sparsedoctor, "auto"), outputs, args.data,
            num_fewshot=dict.fromkeys(outputs, 0), limit=dict.fromkeys(outputs, args.limit),
            batch_size=16,
        )  # fmt: skip
        results = [json.loads(path.read_text())["results"] for path in outputs.values()]
        return {"results": {key: value for result in results for key, value in result.items()}}

    run_stage(record, "evaluate", evaluation)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cuda_check.json").write_text(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
