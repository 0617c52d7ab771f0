"""Reading config files, shared by every part's typed config.

One reader so that YAML, TOML and JSON behave the same everywhere and a bad file always gives one line that names
the file, never a parser traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError


class ConfigFileError(ValueError):
    """A config file that cannot be read or does not validate; the message is one line for the user."""


M = TypeVar("M", bound=BaseModel)


def read_config_file(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """The mapping in a YAML/TOML/JSON file. With `section`, a table of that name is used when present, so one
    file can hold every part's settings (`agent:`, `reward:`, ...) or just one part's.

    The format follows the extension (case-insensitive): `.toml` is TOML, `.json` is JSON, anything else is read
    as YAML, which also reads JSON, so an unusual name still loads whichever of the two it holds."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigFileError(f"config file not found: {p}") from e
    except OSError as e:
        raise ConfigFileError(f"cannot read config file {p}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"config file {p} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})"
                              ) from e
    suffix = p.suffix.lower()
    fmt = "toml" if suffix == ".toml" else "json" if suffix == ".json" else "yaml"
    try:
        data = _parse(text, fmt)
    except Exception as e:  # any parser's error becomes one line naming the file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigFileError(f"config file {p} is not valid {fmt}: {first}") from e
    if data is None:  # an empty YAML file: all defaults
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {p} must be a mapping of settings, not {type(data).__name__}")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set a.b=VALUE` items as a mapping; values are read as YAML so `3`, `true` and `[q_proj]` keep their
    types while anything else stays the string written."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigFileError(f"--set {item!r}: expected KEY=VALUE, e.g. --set max_turns=5")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Sets each dotted key in `data` (in place, and returned), creating sections on the way, so an override is
    validated with the file's settings and a bad one is reported like a bad line in the file."""
    for key, value in overrides.items():
        cur = data
        parts = key.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                raise ConfigFileError(f"--set {key}: {part} is a setting, not a section")
        cur[parts[-1]] = value
    return data


def _parse(text: str, fmt: str) -> Any:
    """The parsers are imported only when a file needs them: most commands read no config file at all."""
    if fmt == "toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        return tomllib.loads(text)
    if fmt == "json":
        return json.loads(text)
    import yaml

    return yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader subclass


@functools.cache
def _unique_key_loader() -> type:
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error: PyYAML keeps the last one,
    so `lr: 1e-5 ... lr: 1e-3` would silently train with the second."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    dup = key in seen
                except TypeError:  # an unhashable key: PyYAML reports it itself
                    continue
                if dup:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})",
                        key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def validation_message(e: ValidationError, source: str = "config", prefix: str = "") -> str:
    """One line naming each bad field, e.g. `lora.rank: Input should be greater than 0`. `prefix` places a nested
    model's fields where they sit in the file (`tools.` for the tools' settings inside the agent section)."""
    parts = []
    for err in e.errors():
        loc = prefix + ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
        # pydantic's wording is for programmers: a misspelt key is "Extra inputs are not permitted".
        msg = "unknown setting" if err.get("type") == "extra_forbidden" else \
            str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return f"{source}: " + "; ".join(parts)


def load_model(cls: type[M], path: str | Path, section: str | None = None) -> M:
    """Reads and validates a typed config; every failure is a ConfigFileError with one clear line."""
    data = read_config_file(path, section)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigFileError(validation_message(e, str(path))) from e
