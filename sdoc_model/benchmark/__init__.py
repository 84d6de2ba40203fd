"""Speed and memory benchmarks (`python -m sdoc_model.benchmark`) and the GPU check."""
