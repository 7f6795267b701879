"""Settings for a test, given by the variable names a deployment sets (without the prefix):
``make_settings(database_url=..., batch_size=64)`` is what ``AUDITOR_DATABASE_URL=...
AUDITOR_BATCH_SIZE=64`` gives. Every other field comes from the environment, as in production.
"""

from __future__ import annotations

from typing import Any

from auditor.settings import Settings, environment_variables, load_settings


def make_settings(**values: Any) -> Settings:
    names = environment_variables()
    groups: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        variable = f"AUDITOR_{name.upper()}"
        if variable not in names:
            raise ValueError(f"{name}: not a setting (no variable {variable})")
        group, field = names[variable]
        groups.setdefault(group, {})[field] = value
    settings = load_settings()
    update = {
        group: type(getattr(settings, group))(**fields)  # the group's other fields: environment
        for group, fields in groups.items()
    }
    return settings.model_copy(update=update)
