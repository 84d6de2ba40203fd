"""Evaluation with lm-eval: the task registry, the prompts and answer letters the tasks share,
and the runner that scores a model as the stock CLI would."""
