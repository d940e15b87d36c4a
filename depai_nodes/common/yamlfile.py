"""Read a YAML file into a pydantic model, with one typed error that says what is wrong and where.

Stack files and policy files (and any later configuration file) share this, so every such file
fails the same way: unreadable, not YAML, not a mapping, or the first invalid field by its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["load_yaml_model"]

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[M], error: type[Exception], what: str) -> M:
    """`model` validated from the YAML at `path`; raises `error` naming `what`, the file and the field.

    An empty file is an empty mapping, so a model whose fields all have defaults accepts it.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be a mapping, not a {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise error(f"{what} {path}: {where}: {first['msg']}") from None
