"""The work behind hydra_plugins/: grid, study, launchers, search space."""
