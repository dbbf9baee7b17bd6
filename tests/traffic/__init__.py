"""Traffic-domain tests."""
