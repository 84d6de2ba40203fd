"""Small shared utilities: atomic files, provenance."""
