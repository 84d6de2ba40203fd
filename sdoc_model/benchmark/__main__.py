"""Speed and memory of SparseDoctor against peft LoRA and the per-expert loops, side by side.

    python -m sdoc_model.benchmark            # the full run: about ten minutes on 2 CPU cores
    python -m sdoc_model.benchmark --quick    # a smoke test of every section in seconds

The last two sections (evaluation throughput, the training job) run the profile's own tasks
and training on its prepared base model and data (`make demo` prepares the demo's).

Every compared implementation runs in the same process on the same inputs, interleaved in rounds
so that drift on a shared machine hits them alike, and each reports its best round: the least
disturbed estimate. The training steps of each model shape run in a fresh process. Peak memory
is the high-water mark of tensor memory allocated during one run, counted by the torch
profiler. Ratios are against peft LoRA of rank k*r.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sdoc_model.base_models.shapes import LLAMA2_7B, MODEL_SHAPES, SMOLLM2_135M, TINY
from sdoc_model.benchmark.evaluation import bench_evaluation, scored_tasks
from sdoc_model.benchmark.job import bench_training_job
from sdoc_model.benchmark.layer import LAYER_TOKENS, bench_dispatch, bench_layer
from sdoc_model.benchmark.step import bench_model_step_in_fresh_process, bench_queue
from sdoc_model.method.config import SparseDoctorConfig
from sdoc_model.method.variants import LORA
from sdoc_model.profile import read_config
from sdoc_model.utils.allocator import keep_freed_memory
from sdoc_model.utils.cli import exit_on_error


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sdoc_model.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shapes = ", ".join(MODEL_SHAPES)
    add = parser.add_argument
    add("--quick", action="store_true", help="tiny shapes, one round: a smoke test")
    add("--layer-shapes", default=f"{SMOLLM2_135M},{LLAMA2_7B}", help=f"comma list of {shapes}")
    add("--tokens", type=int, help=f"tokens per layer benchmark (default: {LAYER_TOKENS})")
    add("--repeats", type=int, default=3, help="timed rounds per layer benchmark")
    add("--model-shapes", default=f"{TINY},{SMOLLM2_135M}", help=f"comma list of {shapes}")
    add("--batch", type=int, default=4)
    add("--seq-len", type=int, default=256)
    add("--step-repeats", type=int, default=2, help="timed rounds per training step")
    add("--no-memory", action="store_true", help="skip the profiler's peak-memory runs")
    add("--threads", type=int, help="torch.set_num_threads")
    add("--dispatch-sweep", action="store_true", help="also time stacked vs grouped dispatch")
    add("--config", type=Path, default=Path("config/config.yaml"), help="the profile to run")
    add("--base-model", type=Path, help="its prepared base model (default: resources/PROFILE/)")
    add("--data", type=Path, help="its prepared data folder (default: resources/PROFILE/data)")
    add("--eval-threads", type=int, default=1, help="threads of evaluation, as its rule has")
    add("--job-steps", type=int, default=12, help="steps of the benchmarked training job")
    args = parser.parse_args(argv)
    if args.quick:
        args.layer_shapes, args.model_shapes, args.repeats, args.step_repeats = TINY, TINY, 1, 1
        args.batch, args.seq_len, args.job_steps = 2, 16, 2
    for shape in [*args.layer_shapes.split(","), *args.model_shapes.split(",")]:
        if shape not in MODEL_SHAPES:
            raise ValueError(f"unknown model shape {shape!r}; expected one of {shapes}")
    return args


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    keep_freed_memory()  # as the training and evaluation jobs do
    if args.threads:
        torch.set_num_threads(args.threads)
    config = SparseDoctorConfig()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; SparseDoctor "
        f"E={config.num_experts} r={config.rank} k={config.top_k} alpha={config.alpha} "
        f"dropout={config.dropout} queue={config.queue_size}; best of {args.repeats} (layers) "
        f"/ {args.step_repeats} (steps) rounds"
    )
    layer_shapes = args.layer_shapes.split(",")
    for shape in layer_shapes:
        tokens = args.tokens or LAYER_TOKENS[shape]
        bench_layer(shape, tokens, config, args.repeats, not args.no_memory)
    if args.dispatch_sweep:
        tokens = args.tokens or LAYER_TOKENS[layer_shapes[0]]
        bench_dispatch(layer_shapes[0], tokens, config, args.repeats)
    for shape in args.model_shapes.split(","):
        step_args = (shape, args.batch, args.seq_len, config, args.step_repeats, not args.no_memory)
        bench_model_step_in_fresh_process(torch.get_num_threads(), *step_args)
    bench_queue(config, MODEL_SHAPES[SMOLLM2_135M]["hidden_size"])
    bench_profile(args)


def bench_profile(args: argparse.Namespace) -> None:
    """Evaluation throughput and the training job, on the profile's prepared model and data."""
    profile = read_config(args.config)
    resources = Path("resources") / profile["profile"]
    base_model = args.base_model or resources / "base_model"
    data = args.data or resources / "data"
    if not (base_model / "config.json").is_file():
        raise FileNotFoundError(
            f"no prepared base model at {base_model}: run `make demo` (or `snakemake "
            f"{base_model}`) first, or pass --base-model and --data"
        )
    evaluation = profile["evaluation"]
    threads = torch.get_num_threads()
    torch.set_num_threads(args.eval_threads)
    bench_evaluation(
        base_model, data, scored_tasks(evaluation["tasks"]), evaluation.get("limit", {}),
        evaluation.get("num_fewshot", {}), evaluation.get("batch_size", 8),
    )  # fmt: skip
    torch.set_num_threads(threads)
    bench_training_job(base_model, data / "train.jsonl", args.config, LORA, args.job_steps, threads)


if __name__ == "__main__":
    main()
