"""A composed config as the flat ``key.sub=value`` pairs trackers log as params."""

from __future__ import annotations

import json
from typing import Any


def flat_config(config: dict, prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"epochs": 3}}`` as ``{"trainer.epochs": 3}``: the keys overrides use;
    numbers, booleans and strings as they are, anything else (a list, None) as JSON."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value)
    return out
