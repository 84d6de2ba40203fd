"""Base models prepared offline into plain Hugging Face folders, and the `sdoc` command."""
