"""The method alone: SparseDoctor's config, layer, losses, memory queue, model and variants."""
