"""One YAML loader for every configuration file: a key given twice is an error at any depth, in
stack files, policy files and map files alike, and an empty file is refused."""
from pathlib import Path

import pytest
import yaml

from depai_nodes.bringup.stack import StackError, load_stack
from depai_nodes.common.yamlfile import DuplicateKeyError, safe_load_unique

REPO = Path(__file__).resolve().parents[2]


def test_duplicate_keys_are_errors_at_any_depth_and_merges_still_work():
    assert safe_load_unique("a: 1\nb: {c: 2}\n") == {"a": 1, "b": {"c": 2}}
    with pytest.raises(DuplicateKeyError, match="duplicate key 'a'"):
        safe_load_unique("a: 1\nb: 2\na: 3\n")
    with pytest.raises(DuplicateKeyError, match="duplicate key 'c'"):
        safe_load_unique("b:\n  - {c: 1, c: 2}\n")
    # PyYAML alone keeps the last value silently: the failure this loader exists for.
    assert yaml.safe_load("a: 1\na: 3\n") == {"a": 3}
    # A merge key (<<) may be overridden on purpose: that is not a duplicate.
    assert safe_load_unique("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")["other"] == {"x": 1, "y": 3}


def test_stack_files_refuse_duplicate_keys_and_empty_files(tmp_path):
    shipped = (REPO / "config" / "stack.yaml").read_text()
    assert load_stack(REPO / "config" / "stack.yaml").nodes
    dup = tmp_path / "stack.yaml"
    dup.write_text(shipped.replace("      robot_radius: 0.3\n", "      robot_radius: 0.3\n      robot_radius: 0.5\n", 1))
    with pytest.raises(StackError, match="duplicate key 'robot_radius'"):
        load_stack(dup)
    dup.write_text("")
    with pytest.raises(StackError, match="empty"):
        load_stack(dup)


def test_map_files_refuse_duplicate_keys(tmp_path, shared_data):
    from depai_nodes.planner.errors import MapLoadError
    from depai_nodes.planner.mapio import load_map

    text = (shared_data / "maps" / "depot.yaml").read_text()
    (tmp_path / "depot.yaml").write_text(text)
    image = yaml.safe_load(text)["image"]
    (tmp_path / image).symlink_to(shared_data / "maps" / image)
    assert load_map(tmp_path / "depot.yaml").width > 0
    (tmp_path / "depot.yaml").write_text(text + "resolution: 1.0\n")
    with pytest.raises(MapLoadError, match="DuplicateKeyError"):
        load_map(tmp_path / "depot.yaml")
