"""tinkerflow's Hydra config tree (package data): ``config.yaml`` and its groups."""
