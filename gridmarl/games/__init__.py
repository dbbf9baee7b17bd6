"""Small games from the papers the controllers follow (benchmarks, not product domains)."""
