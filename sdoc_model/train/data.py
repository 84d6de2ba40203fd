"""Supervised fine-tuning data: evaluation-format prompts, loss on the response tokens only.

The example order is a pure function of (seed, epoch), and the examples of optimizer step s are
a fixed slice of that order, so a resumed run needs nothing but the step to read on exactly
where it stopped, whatever the number of processes. Grouping by length rearranges each epoch's
order from the same seeded generator, so it stays such a function.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sdoc_model.data.schema import load_records
from sdoc_model.eval.prompts import render_answer, render_prompt

IGNORE_INDEX = -100
EXPLANATION_CUE = "\n解析："


@dataclass(frozen=True)
class Example:
    input_ids: tuple[int, ...]
    prompt_length: int  # the first prompt_length tokens are context, the rest is scored
    discipline: int = -1  # index into the sorted disciplines of the training file; -1: none

    @property
    def response_tokens(self) -> int:
        return len(self.input_ids) - self.prompt_length


def render_example(row: dict, include_explanation: bool) -> tuple[str, str]:
    """(prompt, response): the evaluation's prompt, then the answer and optionally why."""
    response = render_answer(row)
    if include_explanation and (row.get("explanation") or "").strip():
        response += EXPLANATION_CUE + row["explanation"].strip()
    return render_prompt(row), response


def tokenize_example(tokenizer, prompt: str, response: str, max_length: int) -> Example:
    """Tokenize as lm-eval does (the whole text, then the prompt's tokens split off), end with EOS.

    Too long: the response keeps at most half of `max_length` (the answer letters come first),
    and the prompt loses tokens from its start.
    """
    whole = tokenizer(prompt + response)["input_ids"]
    prompt_ids = tokenizer(prompt)["input_ids"]
    response_ids = whole[len(prompt_ids) :]
    if tokenizer.eos_token_id is not None and response_ids[-1:] != [tokenizer.eos_token_id]:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    if len(prompt_ids) + len(response_ids) > max_length:
        response_ids = response_ids[: max(max_length // 2, max_length - len(prompt_ids))]
        prompt_ids = prompt_ids[len(prompt_ids) + len(response_ids) - max_length :]
    return Example(tuple(prompt_ids + response_ids), len(prompt_ids))


def load_sft_examples(
    path: Path, tokenizer, max_length: int, include_explanation: bool
) -> list[Example]:
    rows = load_records(path)
    if not rows:
        raise ValueError(f"train file {path} has no rows")
    labels = [discipline_label(row) for row in rows]
    index = {label: i for i, label in enumerate(sorted(set(labels) - {None}))}
    return [
        dataclasses.replace(
            tokenize_example(tokenizer, *render_example(row, include_explanation), max_length),
            discipline=index.get(label, -1),
        )
        for row, label in zip(rows, labels, strict=True)
    ]


def discipline_label(row: dict) -> str | None:
    """A row's coarsest discipline label (the first level of its `disciplines`), if any."""
    return next(iter((row.get("disciplines") or {}).values()), None)


# Micro-batches per length-sorted chunk, as in transformers' LengthGroupedSampler: sorting
# within chunks rather than the whole epoch keeps each step's examples a random draw.
GROUP_BATCHES = 50


@lru_cache(maxsize=4)
def epoch_order(
    num_examples: int,
    seed: int,
    epoch: int,
    lengths: tuple[int, ...] | None = None,
    batch_size: int = 1,
) -> np.ndarray:
    """The examples of `epoch` in order: a permutation, grouped by `lengths` when given."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(num_examples)
    if lengths is None:
        return order
    # The epoch's first `head` examples complete the micro-batch the previous epoch left open.
    head = -epoch * num_examples % batch_size
    return length_grouped(order, np.array(lengths), batch_size, head, rng)


def length_grouped(
    order: np.ndarray, lengths: np.ndarray, batch_size: int, head: int, rng: np.random.Generator
) -> np.ndarray:
    """`order` rearranged so that each micro-batch holds examples of similar length: chunks of
    GROUP_BATCHES micro-batches are sorted by length, then each chunk's micro-batches shuffled.
    The first `head` examples and an incomplete last micro-batch stay where they are, so that
    every cut falls on a micro-batch boundary of the endless slot sequence."""
    body = order[head:]
    full = len(body) - len(body) % batch_size
    pieces = [order[:head]]
    for start in range(0, full, batch_size * GROUP_BATCHES):
        chunk = body[start : min(start + batch_size * GROUP_BATCHES, full)]
        batches = chunk[np.argsort(lengths[chunk], kind="stable")].reshape(-1, batch_size)
        pieces.append(batches[rng.permutation(len(batches))].ravel())
    pieces.append(body[full:])
    return np.concatenate(pieces)


def micro_batch_indices(
    num_examples: int,
    seed: int,
    batch_size: int,
    micro_step: int,
    lengths: tuple[int, ...] | None = None,
) -> list[int]:
    """Example indices of global micro-batch `micro_step`: consecutive slots of the endless
    sequence of per-epoch orders (grouped by `lengths` when given, see `epoch_order`)."""
    start, stop = micro_step * batch_size, (micro_step + 1) * batch_size
    indices = []
    for epoch in range(start // num_examples, (stop - 1) // num_examples + 1):
        order = epoch_order(num_examples, seed, epoch, lengths, batch_size)
        first = epoch * num_examples
        indices += order[max(start - first, 0) : stop - first].tolist()
    return indices


def example_lengths(examples: list[Example]) -> tuple[int, ...]:
    return tuple(len(e.input_ids) for e in examples)


@dataclass
class StepData:
    """What one process needs for one optimizer step."""

    micro_batches: list[dict[str, torch.Tensor]]  # this rank's share of each micro-batch
    response_tokens: int  # scored tokens in the whole step, over all processes: the LM-loss divisor
    real_tokens: list[int]  # non-padding tokens of each global micro-batch: router-stat weights
    local_real_tokens: list[int]  # the same, this rank's share


def step_data(
    examples: list[Example],
    step: int,
    seed: int,
    batch_size: int,
    grad_accum: int,
    rank: int,
    world_size: int,
    pad_id: int,
    lengths: tuple[int, ...] | None = None,
) -> StepData:
    """The step's micro-batches; grouped by the examples' `lengths` when given (the run computes
    them once, see example_lengths)."""
    per_rank = batch_size // world_size
    data = StepData([], 0, [], [])
    for micro in range(step * grad_accum, (step + 1) * grad_accum):
        indices = micro_batch_indices(len(examples), seed, batch_size, micro, lengths)
        batch = [examples[i] for i in indices]
        mine = batch[rank * per_rank : (rank + 1) * per_rank]
        data.micro_batches.append(collate(mine, pad_id))
        data.response_tokens += sum(e.response_tokens for e in batch)
        data.real_tokens.append(sum(len(e.input_ids) for e in batch))
        data.local_real_tokens.append(sum(len(e.input_ids) for e in mine))
    return data


def collate(batch: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (IGNORE_INDEX outside the response),
    and each row's discipline id."""
    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        ids = torch.tensor(example.input_ids)
        input_ids[row, : len(ids)] = ids
        labels[row, example.prompt_length : len(ids)] = ids[example.prompt_length :]
        attention_mask[row, : len(ids)] = 1
    disciplines = torch.tensor([e.discipline for e in batch], dtype=torch.long)
    return {
        "input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
        "discipline_ids": disciplines,
    }  # fmt: skip
