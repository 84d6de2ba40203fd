"""Benchmark section 4: lm-eval scoring this project's tasks against a plain forward pass over
the same inputs, in one process, with lm-eval's start-up (imports, model and task loading) apart.

The plain forward runs the model once over every distinct input lm-eval's log-likelihood
requests need (context plus all but the last continuation token; lm-eval shares one forward
between choices with the same such input), longest first, in batches of the same size, and
keeps nothing but the logits. Both rates count real (unpadded) tokens of those inputs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from sdoc_model.benchmark.measure import print_table
from sdoc_model.eval.runner import Evaluator
from sdoc_model.eval.tasks import TASKS

TARGET = 0.7  # scoring tokens/s at least this share of the plain forward's


def recording_loglikelihood(model) -> tuple[list[tuple[str, str]], list[float]]:
    """Make `model.loglikelihood` record its (context, continuation) requests and wall times."""
    requests, seconds = [], []
    original = model.loglikelihood

    def loglikelihood(batch, **kwargs):
        requests.extend(request.args for request in batch)
        start = time.perf_counter()
        result = original(batch, **kwargs)
        seconds.append(time.perf_counter() - start)
        return result

    model.loglikelihood = loglikelihood
    return requests, seconds


def forward_inputs(model, requests: list[tuple[str, str]]) -> list[list[int]]:
    """The distinct token sequences lm-eval's `hf` model runs for these requests."""
    inputs = set()
    for context, continuation in requests:
        context_ids, continuation_ids = model._encode_pair(context, continuation)
        inputs.add(tuple((context_ids + continuation_ids)[-(model.max_length + 1) :][:-1]))
    return sorted(map(list, inputs), key=len, reverse=True)


@torch.inference_mode()
def plain_forward(model: torch.nn.Module, inputs: list[list[int]], batch_size: int) -> float:
    """Seconds to run `model` over `inputs` in batches (right-padded, masked), logits only."""
    start = time.perf_counter()
    for first in range(0, len(inputs), batch_size):
        batch = inputs[first : first + batch_size]
        width = len(batch[0])
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        model(input_ids=input_ids, attention_mask=attention_mask)
    return time.perf_counter() - start


def bench_evaluation(
    model_dir: Path,
    data_dir: Path,
    tasks: list[str],
    limit: dict[str, int],
    num_fewshot: dict[str, int],
    batch_size: int,
) -> dict[str, float]:
    """Time every task's lm-eval run and the plain forward over its inputs; print the table and
    return the overall ratio, start-up seconds and seconds per question."""
    os.environ["SDOC_DATA_DIR"] = str(Path(data_dir).resolve())
    start = time.perf_counter()
    evaluator = Evaluator.open(f"pretrained={model_dir},dtype=float32", batch_size)
    startup = time.perf_counter() - start
    requests, scoring = recording_loglikelihood(evaluator.model)
    rows, totals = [], {"tokens": 0, "plain": 0.0, "evaluate": 0.0, "questions": 0}
    for task in tasks:
        del requests[:], scoring[:]
        start = time.perf_counter()
        results = evaluator.evaluate(task, num_fewshot.get(task), limit.get(task), seed=0)
        evaluate = time.perf_counter() - start
        inputs = forward_inputs(evaluator.model, requests)
        plain = plain_forward(evaluator.model.model, inputs, batch_size)
        tokens = sum(map(len, inputs))
        questions = sum(n["effective"] for n in results["n-samples"].values())
        rows.append([
            task, f"{questions}", f"{len(requests)}", f"{len(inputs)}", f"{tokens:,d}",
            f"{tokens / plain:.0f}", f"{tokens / sum(scoring):.0f}", f"{tokens / evaluate:.0f}",
            f"{plain / evaluate:.2f}",
        ])  # fmt: skip
        for key, value in zip(totals, (tokens, plain, evaluate, questions), strict=True):
            totals[key] += value
    ratio = totals["plain"] / totals["evaluate"]
    per_question = (startup + totals["evaluate"]) / totals["questions"]
    print_table(
        f"evaluation throughput: lm-eval vs plain forward, {model_dir}, batch {batch_size}, "
        f"{torch.get_num_threads()} thread(s)",
        rows,
        ["task", "questions", "requests", "forwards", "real tokens", "plain tok/s",
         "loglikelihood tok/s", "task run tok/s", "task run/plain"],
    )  # fmt: skip
    print(
        f"all tasks: task runs at {ratio:.2f} of the plain forward's tokens/s (target >= "
        f"{TARGET}); start-up {startup:.1f} s; {per_question:.2f} s per question, start-up "
        f"included"
    )
    return {"ratio": ratio, "startup_s": startup, "s_per_question": per_question}


def scored_tasks(names: list[str]) -> list[str]:
    """The log-likelihood tasks among `names`: generation tasks have no forward to compare."""
    return [name for name in names if not TASKS[name].generative]
