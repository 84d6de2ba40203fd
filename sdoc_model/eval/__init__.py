"""Evaluation with lm-eval: the runner, the prompts and answer letters the tasks share."""
