"""One job: its settings, identity, MLflow record and hooks (no Hydra)."""
