"""Shared by both lanes: nothing that needs a service (the unit lane never imports redis)."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
