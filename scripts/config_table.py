"""Print the README's configuration table from `Settings` (a test checks the README matches it)."""

from __future__ import annotations

import json

from shine_mcp.config import Settings


def config_table() -> str:
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else name.upper()
        if name == "data_dir":
            default = "`$XDG_DATA_HOME/shine` or `~/.local/share/shine`"
        elif field.default_factory is not None:
            default = "`[]`"
        elif field.default is None:
            default = "unset"
        elif isinstance(field.default, list):  # as it is written in the environment: a JSON list
            default = f"`{json.dumps(field.default)}`"
        else:
            default = f"`{field.default}`"
        lines.append(f"| `{env}` | {default} | {field.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(config_table())
