"""Supervised fine-tuning of every trained variant: `loop.train(...)` and
`python -m sdoc_model.train`. Nothing is imported here, so that reading the settings
(`config.TrainingConfig`, which the workflow validates at start-up) costs no torch import."""
