"""Runnable examples of seedhp with your own model and data
(tests/train/test_custom.py runs them)."""
