"""The expert-specialisation probe: which experts the tokens of labelled questions go to.

A mixture-of-experts checkpoint reads, in eval mode and without gradients, the zero-shot
evaluation question (`render_question`: the prompt without its header, which names the
subject and would hand the router the discipline) of the first `per_discipline` questions of every
discipline of each dataset whose rows carry disciplines (the coarsest level, in file order).
In every adapted layer, each real (non-padding) token adds its gate weights to the cells
(its question's discipline, expert): under top-k routing its k renormalised gates, under dense
routing its router probabilities, one unit per token either way (DESIGN.md, statistics). The
report turns these weights into the normalised mutual information of expert and discipline
(sdoc_model.report.routing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import AutoTokenizer

from sdoc_model.eval.prompts import render_question
from sdoc_model.method.hf_model import load_adapted_model
from sdoc_model.method.layer import LoRAMoELinear, RoutingContext, RoutingRecord, top_k_gates
from sdoc_model.utils.atomic import write_text
from sdoc_model.utils.jsonl import read_jsonl


@dataclass(frozen=True)
class LabelledQuestions:
    """One dataset's probe: its coarsest discipline level, the disciplines in order of first
    appearance, and each prompt with the index of its discipline."""

    level: str
    disciplines: list[str]
    prompts: list[str]
    labels: list[int]


def labelled_questions(path: Path, per_discipline: int) -> LabelledQuestions | None:
    """The first `per_discipline` questions of each discipline at the dataset's coarsest level
    (the first level of its first labelled row), in file order; None when no row has one."""
    level, chosen = None, {}
    for row in read_jsonl(path):
        levels = row.get("disciplines") or {}
        level = level or next(iter(levels), None)
        label = levels.get(level)
        if label is not None and len(chosen.setdefault(label, [])) < per_discipline:
            chosen[label].append(render_question(row))
    if not chosen:
        return None
    pairs = [(prompt, index) for index, group in enumerate(chosen.values()) for prompt in group]
    prompts, labels = zip(*pairs, strict=True)
    return LabelledQuestions(level, list(chosen), list(prompts), list(labels))


def gate_weights(record: RoutingRecord) -> torch.Tensor:
    """(tokens, experts) gate weights, as the layer used them: the top-k probabilities
    renormalised, or a dense layer's probabilities; each row sums to 1."""
    if record.top_idx is None:
        return record.probs
    return top_k_gates(record.probs, record.top_idx)


@torch.no_grad()
def routing_counts(
    model, tokenizer, questions: LabelledQuestions, batch_size: int = 8
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per adapted layer, the (discipline, expert) sums of the real tokens' gate weights; and
    the real tokens of each discipline."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRAMoELinear)}
    context = RoutingContext()  # makes the layers record their routing
    for layer in layers.values():
        layer.routing_context = context
    device = next(model.parameters()).device
    disciplines = len(questions.disciplines)
    counts = {
        name: torch.zeros(disciplines, layer.num_experts, dtype=torch.float64, device=device)
        for name, layer in layers.items()
    }
    tokens = torch.zeros(disciplines, dtype=torch.long, device=device)
    # Without special tokens, as lm-eval encodes a causal model's context.
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in questions.prompts]
    # Prompts of similar length batched together: little padding.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    decoder = model.get_decoder()  # the routing is all we need: no LM head
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids = pad_sequence([torch.tensor(encoded[i]) for i in batch], batch_first=True)
        ones = [torch.ones(len(encoded[i]), dtype=torch.long) for i in batch]
        mask = pad_sequence(ones, batch_first=True)
        decoder(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
        real = mask.flatten().bool().to(device)
        labels = torch.tensor([questions.labels[i] for i in batch], device=device)
        token_labels = labels[:, None].expand(ids.shape).flatten()[real]
        tokens += torch.bincount(token_labels, minlength=disciplines)
        for name, layer in layers.items():
            weights = gate_weights(layer.last_routing)[real].double()
            counts[name].index_add_(0, token_labels, weights)
    return {name: count.cpu() for name, count in counts.items()}, tokens.cpu()


def probe_model(
    model_dir: Path,
    datasets: dict[str, Path],
    per_discipline: int,
    dtype: str = "float32",
    batch_size: int = 8,
) -> dict:
    """The probe's record of one checkpoint over `datasets` (name -> normalised file); the
    model is loaded only when some dataset has disciplines."""
    probes = {name: labelled_questions(path, per_discipline) for name, path in datasets.items()}
    probes = {name: questions for name, questions in probes.items() if questions}
    record = {"questions_per_discipline": per_discipline, "datasets": {}}
    if not probes:
        return record
    model = load_adapted_model(model_dir, dtype=getattr(torch, dtype))
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    # The folder's config.json names loader code, which the tokenizer does not need.
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    layer = next(m for m in model.modules() if isinstance(m, LoRAMoELinear))
    record |= {"num_experts": layer.num_experts, "top_k": layer.top_k, "weights": "gates"}
    for name, questions in probes.items():
        counts, tokens = routing_counts(model, tokenizer, questions, batch_size)
        record["datasets"][name] = {
            "level": questions.level,
            "disciplines": questions.disciplines,
            "questions": [questions.labels.count(i) for i in range(len(questions.disciplines))],
            "tokens": tokens.tolist(),
            "counts": {layer_name: count.tolist() for layer_name, count in counts.items()},
        }
    return record


def write_probe(path: Path, record: dict) -> None:
    write_text(path, json.dumps(record, ensure_ascii=False) + "\n")
