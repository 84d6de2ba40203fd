"""Answer letters: the choices a log-likelihood task compares, extraction from free text,
and exact set-match scoring.

Multi-answer questions are scored as a whole: the answer is right only when the set of
chosen letters equals the key's set.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from itertools import combinations

from sdoc_model.eval.prompts import option_letters


def answer_choices(row: Mapping) -> list[str]:
    """What a log-likelihood task compares after ``答案：``.

    Single-answer questions: each option letter. Multi-answer questions: every non-empty
    subset of the option letters, written in order ("A", ..., "AB", ..., "ABCDE"), so picking
    the most likely choice is an exact set match against the key.
    """
    letters = option_letters(row)
    if row["question_type"] != "multi":
        return list(letters)
    return ["".join(c) for size in range(1, len(letters) + 1) for c in combinations(letters, size)]


_RUN = re.compile(r"[A-Za-z]+")
# Between letters of one answer: "A、C", "A, C", "A和C", "C 和 D", "A and C", "A/C". Not a
# line break: "B\nC. 肝脏" is an answer followed by an echoed option.
_SEPARATOR = re.compile(r"[ \t]*(?:[、,;/&+和及与]|and(?![A-Za-z]))[ \t]*|[ \t]+")
# Brackets and spaces that may open an answer: "(B)", "【B】".
_OPENING = re.compile(r"[\s(\[【「]*")
# Words announcing the answer, strongest first: "答案是B" beats a stray "其他选项A错误".
_CUES = (
    re.compile(r"答案?|answer", re.IGNORECASE),
    re.compile(r"选项|选择|选"),
)
# What may sit between a cue and the letters: "答案：", "答案应该是 ", "answer is", "选项（".
_LINK = re.compile(r"(?:[\s:是为应该当就选(\[【「]|is(?![A-Za-z]))*", re.IGNORECASE)


def _is_answer_run(run: str, valid: str) -> bool:
    """A run of Latin letters that names options: "B", "ABD", a lone "b"; not "DNA", not "bad"."""
    return (run.isupper() or len(run) == 1) and all(letter in valid for letter in run.upper())


def _letters_at(text: str, pos: int, valid: str) -> str:
    """The option letters written from ``pos`` on ("B", "ABD", "A、C", "C 和 D"), or ""."""
    if pos > 0 and text[pos - 1].isascii() and text[pos - 1].isalpha():
        return ""
    letters = ""
    while (run := _RUN.match(text, pos)) and _is_answer_run(run.group(), valid):
        letters += run.group().upper()
        separator = _SEPARATOR.match(text, run.end())
        if separator is None:
            break
        pos = separator.end()
    return letters


def _after_cue(text: str, valid: str) -> str:
    """The letters after the first cue word that is followed by any, strongest cues first."""
    for cue in _CUES:
        for match in cue.finditer(text):
            if letters := _letters_at(text, _LINK.match(text, match.end()).end(), valid):
                return letters
    return ""


def extract_answer(text: str, valid_letters: Iterable[str]) -> str:
    """The option letters a model's free-text answer chooses, sorted ("B", "ACD"); "" if none.

    The prompt ends in ``答案：``, so letters right at the start are the answer ("B", "(B)",
    "A和C"). Otherwise the first letters after a cue word ("答案是B", "正确答案为 C 和 D",
    "我认为选B"). Letters must stand alone: "DNA" names no options.
    """
    text = unicodedata.normalize("NFKC", text)  # full-width "Ｂ", "（B）", "：" to ASCII
    valid = "".join(valid_letters).upper()
    letters = _letters_at(text, _OPENING.match(text).end(), valid) or _after_cue(text, valid)
    return "".join(sorted(set(letters)))


def exact_set_match(predicted: str, gold: str) -> bool:
    """True when the predicted letters are exactly the key's letters (none chosen is wrong)."""
    return bool(predicted) and set(predicted) == set(gold)
