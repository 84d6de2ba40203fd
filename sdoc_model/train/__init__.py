"""Supervised fine-tuning of every trained variant: `train(...)` and
`python -m sdoc_model.train`."""

from sdoc_model.train.config import TrainingConfig
from sdoc_model.train.loop import train
from sdoc_model.train.trainer import NonFiniteLossError

__all__ = ["NonFiniteLossError", "TrainingConfig", "train"]
