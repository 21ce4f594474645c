"""Runnable examples of seedhp with your own model and data (tests/test_custom.py runs them)."""
