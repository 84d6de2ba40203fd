"""One compact record per scored question, from lm-eval's logged samples.

Beside each aggregated result the workflow keeps `<task>.questions.jsonl`, one line a question:

    {"id", "benchmark", "discipline", "disciplines", "task", "choice", "answer", "correct",
     "scores"}

`choice` is what the model answered (the most likely choice, or the letters read from its
generated text), `scores` the log-likelihood of every choice (multiple-choice tasks) or the
generated text (generative ones), so paired comparisons between models need only these files.
`discipline` is the row's subject, its finest discipline label, and `disciplines` every level
of its source's classification (sdoc_model.data.schema), for the per-discipline table; both are
null for XMedBench's samples, which have none.
"""

from __future__ import annotations

from sdoc_model.eval.answers import answer_choices, extract_answer
from sdoc_model.eval.prompts import option_letters


def question_records(task: str, samples: list[dict], generative: bool) -> list[dict]:
    """`samples`: lm-eval's logged samples of one leaf task, in document order."""
    return [_record(task, sample, generative) for sample in samples]


def _record(task: str, sample: dict, generative: bool) -> dict:
    doc = sample["doc"]
    if generative:
        scores = sample["filtered_resps"][0]  # the generated text
        choice, correct = extract_answer(scores, option_letters(doc)), sample["exact_match"]
    else:
        scores = [float(loglikelihood) for loglikelihood, _ in sample["filtered_resps"]]
        choices = answer_choices(doc)
        choice, correct = choices[scores.index(max(scores))], sample["acc"]
    return {
        "id": doc["id"],
        "benchmark": doc["benchmark"],
        "discipline": doc.get("subject"),
        "disciplines": doc.get("disciplines"),
        "task": task,
        "choice": choice,
        "answer": doc["answer"],
        "correct": bool(correct),
        "scores": scores,
    }
