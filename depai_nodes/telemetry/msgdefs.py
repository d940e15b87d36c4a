"""Full ROS 2 message definitions (MCAP ``ros2msg`` schemas) from the installed .msg files.

ROS-free: finds ``<prefix>/share/<package>/msg/<Type>.msg`` on AMENT_PREFIX_PATH (or the ament
index when importable) and concatenates the type's definition with those of every type it uses,
each after a line of 80 ``=`` and ``MSG: package/Type`` - the layout rosbag2 writes, which
rosbags, Foxglove and the MCAP tools parse.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["MsgDefError", "full_definition"]

PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
              "int64", "uint64", "string", "wstring"}
_SEP = "=" * 80


class MsgDefError(LookupError):
    """A message type whose .msg definition is not installed."""


def _prefixes() -> list[Path]:
    out = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return out


@lru_cache(maxsize=None)
def _msg_file(package: str, name: str) -> str:
    for prefix in _prefixes():
        f = prefix / "share" / package / "msg" / f"{name}.msg"
        if f.is_file():
            return f.read_text()
    try:
        from ament_index_python.packages import get_package_share_directory

        f = Path(get_package_share_directory(package)) / "msg" / f"{name}.msg"
        if f.is_file():
            return f.read_text()
    except Exception:  # noqa: BLE001 - not installed / no ament index: reported below
        pass
    raise MsgDefError(f"no installed definition of {package}/msg/{name}")


def _split(type_name: str) -> tuple[str, str]:
    parts = type_name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise MsgDefError(f"'{type_name}' is not package/msg/Type")


def _dependencies(package: str, text: str) -> list[str]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        base = re.split(r"[\[<]", line.split()[0], maxsplit=1)[0]
        if base in PRIMITIVES:
            continue
        deps.append(base if "/" in base else f"{package}/{base}")
    return deps


@lru_cache(maxsize=None)
def full_definition(type_name: str) -> str:
    """The ros2msg schema text of ``type_name`` (``pkg/msg/Type`` or ``pkg/Type``)."""
    package, name = _split(type_name)
    root = _msg_file(package, name)
    parts, seen, todo = [root.rstrip("\n")], set(), _dependencies(package, root)
    while todo:
        dep = todo.pop(0)
        dep = "/".join(_split(dep))
        if dep in seen:
            continue
        seen.add(dep)
        p, n = _split(dep)
        text = _msg_file(p, n)
        parts.append(f"{_SEP}\nMSG: {p}/{n}\n{text.rstrip(chr(10))}")
        todo.extend(_dependencies(p, text))
    return "\n".join(parts) + "\n"
