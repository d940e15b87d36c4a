"""Read a YAML file into a pydantic model, with one typed error that says what is wrong and where.

Stack files and policy files (and any later configuration file) share this, so every such file
fails the same way: unreadable, not YAML, empty, a key given twice, not a mapping, or the first
invalid field by its path. A configuration file is taken whole or refused whole:

- a mapping key given twice (at any depth) is an error, not "the last one wins" (PyYAML's
  default, which silently drops the first value);
- an empty file (or one with only comments) is an error, not an empty mapping: it is what a
  save interrupted before its first byte leaves behind;
- with ``complete=True`` (policy files) every field of the model must be given, and the file must
  end with YAML's end-of-document line ``...``. A save cut short at any byte loses that line
  (and usually later keys), so a truncated file is refused instead of read as a smaller policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["DuplicateKeyError", "UniqueKeyLoader", "load_yaml_model", "safe_load_unique"]

M = TypeVar("M", bound=BaseModel)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with a repeated key (PyYAML keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            # Only the keys written in this mapping count: overriding a merged (<<) key is allowed.
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    first = seen[key]
                    raise DuplicateKeyError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first given on line {first.line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises DuplicateKeyError (a yaml.YAMLError) on a repeated key."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _ends_with_document_end(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return bool(lines) and lines[-1] == "..."


def load_yaml_model(path: str | Path, model: type[M], error: type[Exception], what: str, *,
                    complete: bool = False) -> M:
    """`model` validated from the YAML at `path`; raises `error` naming `what`, the file and the field.

    With ``complete``, every model field must be in the file and the file must end with ``...``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
    try:
        data = safe_load_unique(text)
    except DuplicateKeyError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise error(f"{what} {path}: line {line}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if data is None:
        raise error(f"{what} {path} is empty (nothing but whitespace or comments)")
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be a mapping, not a {type(data).__name__}")
    if complete:
        missing = [name for name in model.model_fields if name not in data]
        if missing:
            raise error(f"{what} {path} is incomplete: missing {', '.join(missing)} "
                        "(every key must be given; a truncated file is refused)")
        if not _ends_with_document_end(text):
            raise error(f"{what} {path} does not end with the YAML end-of-document line '...' "
                        "(the file may be truncated by an interrupted save)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise error(f"{what} {path}: {where}: {first['msg']}") from None
