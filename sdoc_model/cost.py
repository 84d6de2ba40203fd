"""What a profile's run will cost before it starts: ``sdoc cost --config config/paper.yaml``.

Lists every training, evaluation and routing-probe job with its tokens and the GPU-hours it will
take, and the Slurm runtime to ask for. Throughput comes from the GPU benchmark's figures when
given (``python -m sdoc_model.benchmark.gpu --out gpu.json``, then ``--gpu-figures gpu.json``),
else from a stated assumption: a model FLOPs utilisation of the GPU's bf16 peak, at 4 x
parameters FLOP per trained token (frozen base: forward and input gradients) and 2 x parameters
per evaluated token. Token counts are estimates too, each stated in the output: training
examples of `--tokens-per-example` tokens, evaluation prompts of the lengths measured on the
demo's questions (zero-shot; a few-shot prompt is that many times longer); a routing probe reads
`evaluation.routing_questions` questions per discipline of each test set, for an assumed number
of disciplines (`--disciplines`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sdoc_model.data.benchmarks import CMB, CMEXAM, CMMLU_MED
from sdoc_model.data.sources import dataset
from sdoc_model.eval.tasks import TASKS
from sdoc_model.method.variants import SPARSEDOCTOR
from sdoc_model.profile import model_specs, read_config

# Zero-shot prompt tokens per question, measured on the demo's first questions
# (python -m sdoc_model.benchmark; SmolLM2's tokenizer).
PROMPT_TOKENS = {CMB: 197, CMEXAM: 207, CMMLU_MED: 172}
# Base model parameters (billions) of the hub models the profiles name.
PARAMS_B = {"Qwen/Qwen2.5-7B-Instruct": 7.6, "FreedomIntelligence/HuatuoGPT2-7B": 7.5,
            "FreedomIntelligence/Apollo-7B": 8.5}  # fmt: skip
MARGIN = 1.5  # Slurm runtime asked for: the estimate times this


def task_tokens(task: str, shots: int, limit: int | None) -> tuple[int, int]:
    """(questions, prompt tokens) of one task's evaluation."""
    spec = TASKS[task]
    questions = min(dataset(spec.dataset).questions, limit or math.inf)
    return int(questions), int(questions * PROMPT_TOKENS[spec.benchmark] * (1 + shots))


def routing_tokens(evaluation: dict, args) -> int:
    """Prompt tokens of one routing probe: a forward pass over the first questions of each
    discipline of every evaluated test set (each set once, however many tasks read it)."""
    tokens, per_set = 0, evaluation["routing_questions"] * args.disciplines
    for name in dict.fromkeys(TASKS[task].dataset for task in evaluation["tasks"]):
        spec = dataset(name)
        tokens += min(spec.questions, per_set) * PROMPT_TOKENS[spec.benchmark]
    return tokens


def throughput(args, params: float) -> tuple[float, float, str]:
    """(training, evaluation) tokens/s per GPU, and where they come from."""
    if args.gpu_figures:
        figures = json.loads(Path(args.gpu_figures).read_text())
        source = f"measured by the GPU benchmark ({args.gpu_figures})"
        return figures[SPARSEDOCTOR]["tokens_per_s"], figures["eval_forward_tokens_per_s"], source
    rate = args.peak_tflops * 1e12 * args.mfu
    source = f"assumed: {args.mfu:.0%} of {args.peak_tflops:g} bf16 TFLOP/s, {params:g}B params"
    return rate / (4 * params * 1e9), rate / (2 * params * 1e9), source


def plan(config: dict, args) -> list[dict]:
    training, evaluation = config["training"], config["evaluation"]
    params = PARAMS_B.get(config["base_model"].get("model_id"), args.params_b)
    train_rate, eval_rate, source = throughput(args, params)
    print(f"Throughput per GPU: training {train_rate:,.0f}, evaluation {eval_rate:,.0f} tokens/s, "
          f"{source}.")  # fmt: skip
    steps = training["max_steps"]
    examples = steps * training["batch_size"] * training.get("grad_accum", 1)
    probe_tokens = routing_tokens(evaluation, args)
    jobs = []
    for name, spec in model_specs(config).items():
        if spec.trained:
            tokens = examples * args.tokens_per_example
            jobs.append({"job": "train", "model": name, "tokens": tokens,
                         "gpus": training.get("num_processes", 1), "rate": train_rate})  # fmt: skip
        tokens = sum(
            task_tokens(task, evaluation.get("num_fewshot", {}).get(task, 0),
                        evaluation.get("limit", {}).get(task))[1]
            for task in evaluation["tasks"]
        )  # fmt: skip
        rate = eval_rate * params / PARAMS_B.get(spec.model_id, params)
        jobs.append({"job": "evaluate", "model": name, "tokens": tokens, "gpus": 1, "rate": rate})
        if spec.moe:
            jobs.append({"job": "routing", "model": name, "tokens": probe_tokens, "gpus": 1,
                         "rate": eval_rate})  # fmt: skip
    for job in jobs:
        job["gpu_hours"] = job["tokens"] / job["rate"] / 3600
        job["runtime_min"] = math.ceil(MARGIN * 60 * job["gpu_hours"] / job["gpus"])
    return jobs


def print_plan(jobs: list[dict], config: dict, args) -> None:
    print(f"Training: {config['training']['max_steps']} steps of "
          f"{config['training']['batch_size'] * config['training'].get('grad_accum', 1)} "
          f"examples of {args.tokens_per_example} tokens (--tokens-per-example).")  # fmt: skip
    print(f"Routing probes: {config['evaluation']['routing_questions']} questions per discipline, "
          f"{args.disciplines} disciplines per test set assumed (--disciplines).")  # fmt: skip
    print(f"{'job':9s} {'model':34s} {'tokens':>14s} {'GPUs':>5s} {'GPU-hours':>10s} "
          f"{'runtime min':>12s}")  # fmt: skip
    for job in jobs:
        print(f"{job['job']:9s} {job['model']:34s} {job['tokens']:14,d} {job['gpus']:5d} "
              f"{job['gpu_hours']:10.1f} {job['runtime_min']:12d}")  # fmt: skip
    for kind in ("train", "evaluate", "routing"):
        chosen = [job for job in jobs if job["job"] == kind]
        configured = config.get("resources", {}).get(kind, {}).get("runtime")
        longest = max((job["runtime_min"] for job in chosen), default=0)
        print(f"{kind}: {len(chosen)} jobs, {sum(j['gpu_hours'] for j in chosen):,.1f} GPU-hours; "
              f"runtime to ask for (x{MARGIN}): {longest} min; configured: {configured} min"
              + (" (too short)" if configured and configured < longest else ""))  # fmt: skip
    print(f"total: {sum(job['gpu_hours'] for job in jobs):,.1f} GPU-hours")


def add_cost(commands) -> None:
    parser = commands.add_parser("cost", help="the jobs of a profile and their GPU-hours",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add = parser.add_argument
    add("--config", type=Path, default=Path("config/paper.yaml"))
    add("--gpu-figures", type=Path, help="JSON of python -m sdoc_model.benchmark.gpu --out")
    add("--peak-tflops", type=float, default=989.0, help="bf16 peak (default: H100/H200)")
    add("--mfu", type=float, default=0.35, help="assumed model FLOPs utilisation")
    add("--params-b", type=float, default=7.6, help="base model billions of parameters")
    add("--tokens-per-example", type=int, default=256, help="mean training example length")
    add("--disciplines", type=int, default=30, help="disciplines per test set (routing probe)")
    parser.set_defaults(run=run_cost)


def run_cost(args) -> None:
    config = read_config(args.config)
    unknown = [task for task in config["evaluation"]["tasks"] if task not in TASKS]
    if unknown:
        raise ValueError(f"{args.config}: evaluation.tasks: unknown task(s) {unknown}")
    print_plan(plan(config, args), config, args)
