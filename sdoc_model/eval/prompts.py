"""Prompt rendering shared by the lm-eval tasks (``tasks/``) and the training code.

One format per benchmark, so training sees exactly the text that evaluation asks:

* CMMLU-Med: the prompt of lm-eval's own ``cmmlu`` tasks, a header naming the subject,
  then ``{question}\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\n答案：``.
* CMB, CMExam (and any other exam-style source): the same layout with every option, and a
  header that says whether the question is single (单项) or multiple (多项) choice.

``render_prompt(row) + render_answer(row)`` is the full scored text of a zero-shot question:
lm-eval puts the header (:func:`describe`) once before any few-shot examples, then each
question (:func:`render_question`), and scores the continuation ``" " + letters``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdoc_model.data.benchmarks import CMMLU_MED, CMMLU_MED_SUBJECTS

# lm-eval's default target_delimiter, which its cmmlu tasks use: "答案： A".
ANSWER_DELIMITER = " "


def options(row: Mapping) -> dict[str, str]:
    """The row's options in letter order.

    Rows loaded through Hugging Face ``datasets`` share one options struct, so letters that a
    question lacks come back as None; they are not options of that question.
    """
    return {letter: text for letter, text in sorted(row["options"].items()) if text is not None}


def option_letters(row: Mapping) -> str:
    return "".join(options(row))


def describe(row: Mapping) -> str:
    """The header before the questions: subject, and single or multiple choice."""
    if row["benchmark"] == CMMLU_MED:
        subject = CMMLU_MED_SUBJECTS.get(row["subject"])
        if subject is None:
            raise ValueError(
                f"CMMLU-Med question {row['id']}: subject {row['subject']!r} is not one of "
                f"{', '.join(CMMLU_MED_SUBJECTS)}"
            )
        return f"以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"
    kind, which = (
        ("多项选择题", "所有正确答案")
        if row["question_type"] == "multi"
        else ("单项选择题", "正确答案")
    )
    about = f"中关于{row['subject']}" if row.get("subject") else ""
    return f"以下是中国医学考试{about}的{kind}，请直接给出{which}的选项。\n\n"


def render_question(row: Mapping) -> str:
    """One question, its options and the answer cue, as lm-eval's cmmlu ``doc_to_text``."""
    # As cmmlu's "{{Question.strip()}}\nA. {{A}}...": the question stripped, options as they are.
    lines = [row["question"].strip()]
    lines += [f"{letter}. {text}" for letter, text in options(row).items()]
    return "\n".join(lines) + "\n答案："


def render_prompt(row: Mapping) -> str:
    """The zero-shot prompt: header, question, options, ``答案：``."""
    return describe(row) + render_question(row)


def render_answer(row: Mapping) -> str:
    """The scored continuation of :func:`render_prompt`: a space, then the answer letters."""
    return ANSWER_DELIMITER + row["answer"]
