"""Domain services: keyword-only functions taking ``session``; each owns its commit."""
