"""The training of one pack of seeds: pure torch (no Hydra, no MLflow)."""
