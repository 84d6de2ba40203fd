"""Small shared utilities: atomic files, JSONL, strict conversions, provenance, CLI errors."""
