"""Reading config files, shared by every part's typed config.

One reader so that YAML, TOML and JSON behave the same everywhere and a bad file always gives one line that names
the file, never a parser traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError


class ConfigFileError(ValueError):
    """A config file that cannot be read or does not validate; the message is one line for the user."""


M = TypeVar("M", bound=BaseModel)


def read_config_file(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """The mapping in a YAML/TOML/JSON file. With `section`, a table of that name is used when present, so one
    file can hold every part's settings (`agent:`, `reward:`, ...) or just one part's."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigFileError(f"cannot read config file {p}: {e.strerror or e}") from e
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif p.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parser's error becomes one line naming the file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigFileError(f"config file {p} is not valid {p.suffix.lstrip('.') or 'json'}: {first}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {p} must hold a mapping of settings, not {type(data).__name__}")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return data


def validation_message(e: ValidationError, source: str = "config") -> str:
    """One line naming each bad field, e.g. `lora.rank: Input should be greater than 0`."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return f"{source}: " + "; ".join(parts)


def load_model(cls: type[M], path: str | Path, section: str | None = None) -> M:
    """Reads and validates a typed config; every failure is a ConfigFileError with one clear line."""
    data = read_config_file(path, section)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigFileError(validation_message(e, str(path))) from e
