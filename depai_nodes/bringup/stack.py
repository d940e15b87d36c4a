"""The stack description: which nodes run, where, with which parameters.

`config/stack.yaml` is the single source of truth. Both bring-up paths read it through this
module: `launch/depai.launch.py` (stock ROS 2: `ros2 launch depai depai.launch.py`) turns it into
launch_ros Node actions, and `depai launch` (pip install, where launch_ros does not exist) turns
it into supervised OS processes. Neither path has its own list of nodes or parameters.

A node entry is either fleet-scoped (runs once, in the root namespace) or robot-scoped (runs
once per robot, in that robot's namespace). String parameters of the form
`package://depai/<path>` resolve to files installed in the package's share directory, and a
parameter whose value is `$(robots)` becomes the list of robot names (for fleet-scoped nodes that
serve every robot, such as the simulator). In robot-scoped nodes `$(robot)` inside a string
becomes the robot's name and a value `$(robot_index)` its 1-based position (e.g. which demo key
a robot's wallet uses).

Every parameter value is checked here, for both paths, against what a ROS 2 parameter can carry
(`ros_parameters`): bool, int64, float, string, or a uniform list of one of them (the empty list
included; ints in a list of floats become floats), with nested mappings flattened to dotted
names as rcl does. Anything else (null, bytes, nested lists, mixed lists, integers beyond int64)
is a StackError naming `node.parameter`, before any node starts. Both paths hand the values to
the node as a parameter file (`--params-file`), never as launch_ros's dict form, which cannot
carry an empty list and names no parameter when it fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from depai_nodes.common.yamlfile import load_yaml_model

__all__ = [
    "StackError", "NodeSpec", "ChainSpec", "DaoRoundSpec", "StackSpec", "NodeInstance", "load_stack", "with_robots", "expand", "resolve_package_paths",
    "ros_parameters", "uses_chain", "parse_robots",
]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ROBOTS_PLACEHOLDER = "$(robots)"
ROBOT_PLACEHOLDER = "$(robot)"
ROBOT_INDEX_PLACEHOLDER = "$(robot_index)"


class StackError(ValueError):
    """The stack description cannot be read or is invalid."""


class NodeSpec(BaseModel):
    """One entry of `nodes:` in the stack file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the entry's name (for --only, --enable, --set); also the ROS node name unless node_name")
    concern: str = Field(description="which node program: depai_nodes/<concern>/node.py")
    scope: Literal["fleet", "robot"] = "robot"
    node_name: str | None = Field(None, description="ROS node name when it differs from `name` (two entries may run `wallet`)")
    namespace: str | None = Field(None, description="fleet scope only: run in this namespace instead of the root one")
    parameters: dict[str, Any] = Field(default_factory=dict)
    respawn: bool = True
    respawn_delay: float = Field(1.0, ge=0.0, le=60.0)
    enabled: bool = True
    needs_chain: bool = Field(False, description="runs only with a chain (`depai launch --no-chain` leaves it out)")
    without_chain: dict[str, Any] = Field(default_factory=dict, description="parameters that replace these without a chain")

    @field_validator("name", "concern", "node_name", "namespace")
    @classmethod
    def _ros_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"'{value}' is not a valid ROS name (letters, digits, underscores)")
        return value

    @model_validator(mode="after")
    def _namespace_scope(self) -> "NodeSpec":
        if self.namespace is not None and self.scope != "fleet":
            raise ValueError(f"node '{self.name}': `namespace` is for fleet-scoped nodes (robot nodes live in their robot's)")
        return self


class ChainSpec(BaseModel):
    """`chain:` in the stack file: the chain the main job brings with it (bringup/chain.py)."""

    model_config = ConfigDict(extra="forbid")

    network: str = Field("local", description="`local`: start the pinned anvil (state kept across runs); else a network NAME (chain/networks/NAME.yaml) or a config FILE")
    port: int = Field(8545, ge=0, le=65535, description="local chain: RPC port of a new chain (0: any free port); a restored one keeps its own")
    fund_robot: str = Field("10000000000000000000000", pattern=r"^[0-9]{1,78}$", description="local chain: FLEET base units for each robot's account with none")
    fund_requester: str = Field("100000000000000000000000", pattern=r"^[0-9]{1,78}$", description="local chain: FLEET base units for the requester's account when it has none")
    voting_delay: int = Field(1, ge=0, description="local chain: governor voting delay, blocks")
    voting_period: int = Field(20, ge=1, description="local chain: governor voting period, blocks")
    timelock_delay: int = Field(10, ge=0, description="local chain: timelock delay, s")
    state_interval: float = Field(1.0, ge=1.0, le=60.0, description="local chain: s between anvil state dumps (what a kill -9 can lose)")


class DaoRoundSpec(BaseModel):
    """`dao_round:` in the stack file: the Governor round the main job runs mid-run on its local
    chain (bringup/dao_round.py): the DAO's members lower the speed limit and close a station with
    a keep-out zone. Not a node: the members' keys never live in one."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(0.0, ge=0.0, le=86400.0, description="s after the nodes start (0: no round; `depai launch --vote-at S` overrides)")
    max_speed: float | None = Field(0.4, gt=0.0, le=50.0, description="the new speed limit, m/s (null: unchanged)")
    station: str = Field("", max_length=32, description="station id (the world's stations file) to cover with a keep-out zone ('': none)")
    world: str = Field("warehouse", min_length=1, description="whose stations file names `station`")
    zone_half_width: float = Field(1.5, gt=0.0, le=50.0, description="m: the zone is a square this far around the station on each side")
    zone_id: str = Field("", max_length=32, description="the zone's id on chain (bytes32); '': `<station>_closed`")
    description: str = Field("", max_length=500, description="the proposal's description; '': one that says what it does")
    clear_for: float = Field(8.0, ge=0.0, le=600.0, description="s no task to the zone's station may have been held by a robot before the vote (a robot inside a new zone may only leave it, and its task could not be paid)")
    max_wait: float = Field(120.0, ge=0.0, le=3600.0, description="s at most the round waits for that; then it votes anyway")

    @model_validator(mode="after")
    def _something(self) -> "DaoRoundSpec":
        if self.at > 0 and self.max_speed is None and not self.station:
            raise ValueError("dao_round: give max_speed or station (or at: 0 for no round)")
        return self


class StackSpec(BaseModel):
    """The whole stack file."""

    model_config = ConfigDict(extra="forbid")

    robots: list[str] = Field(default_factory=lambda: ["robot1"])
    use_sim_time: bool = Field(False, description="every node follows /clock, when the clock node runs (a launch without it: wall time)")
    clock_node: str = Field("simulator", description="the entry that publishes /clock; use_sim_time applies only when it is launched")
    chain: ChainSpec = Field(default_factory=ChainSpec)
    dao_round: DaoRoundSpec = Field(default_factory=DaoRoundSpec)
    nodes: list[NodeSpec]

    @model_validator(mode="after")
    def _unique_nodes(self) -> "StackSpec":
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names must be unique in the stack (use node_name for the ROS name): {', '.join(dupes)}")
        placed = [(n.namespace or "", n.node_name or n.name) for n in self.nodes if n.scope == "fleet"]
        clash = sorted({f"/{ns}/{nm}".replace("//", "/") for ns, nm in placed if placed.count((ns, nm)) > 1})
        if clash:
            raise ValueError(f"two fleet nodes would run as {', '.join(clash)}")
        clash = sorted({n.namespace for n in self.nodes if n.namespace and n.namespace in self.robots})
        if clash:
            raise ValueError(f"namespace {', '.join(clash)} is also a robot's")
        return self

    @field_validator("robots")
    @classmethod
    def _robot_names(cls, robots: list[str]) -> list[str]:
        for robot in robots:
            if not _NAME.match(robot):
                raise ValueError(f"robot name '{robot}' is not a valid ROS namespace")
        if len(set(robots)) != len(robots):
            raise ValueError("robot names must be unique")
        return robots


class NodeInstance(BaseModel):
    """A node as it will run: a spec placed in a namespace with resolved parameters."""

    name: str  # the ROS node name
    concern: str
    namespace: str  # "" for the root namespace, else "robot1"
    parameters: dict[str, Any]
    respawn: bool
    respawn_delay: float
    entry: str = ""  # the stack entry it comes from ("" : same as name)
    scope: Literal["fleet", "robot"] = "robot"

    @property
    def fqn(self) -> str:
        return f"/{self.namespace}/{self.name}" if self.namespace else f"/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def load_stack(path: str | Path) -> StackSpec:
    """Read and validate a stack file; StackError says what is wrong and where."""
    return load_yaml_model(path, StackSpec, StackError, "stack file")


def with_robots(stack: StackSpec, robots: list[str] | None) -> StackSpec:
    """The stack with its robot list replaced, validated like the stack file's (names, uniqueness).

    Both launchers take robots from their command line (`--robots`, `robots:=`); validating here
    means neither can start duplicate nodes or fail half-way on an invalid namespace.
    """
    if not robots:
        return stack
    try:
        return StackSpec.model_validate({**stack.model_dump(), "robots": robots})
    except ValidationError as exc:
        raise StackError(f"robots {','.join(robots)}: {exc.errors()[0]['msg']}") from None


def resolve_package_paths(parameters: dict[str, Any], share_dir: str | None = None) -> dict[str, Any]:
    """Replace `package://depai/<rel>` strings with absolute paths in the installed share dir."""
    prefix = "package://depai/"
    if share_dir is None and any(isinstance(v, str) and v.startswith(prefix) for v in parameters.values()):
        from ament_index_python.packages import get_package_share_directory

        share_dir = get_package_share_directory("depai")
    return {
        key: (str(Path(share_dir) / value[len(prefix):]) if isinstance(value, str) and value.startswith(prefix) else value)
        for key, value in parameters.items()
    }


_INT64 = (-(2**63), 2**63 - 1)


def _scalar_kind(value: Any) -> type | None:
    """bool, int, float or str for a value a ROS parameter can hold, else None."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int if _INT64[0] <= value <= _INT64[1] else None
    if isinstance(value, float):
        return float
    if isinstance(value, str):
        return str
    return None


def _ros_value(where: str, value: Any) -> Any:
    kind = _scalar_kind(value)
    if kind is not None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise StackError(f"{where}: {value} does not fit a ROS integer (int64); quote it to pass a string")
    if isinstance(value, (list, tuple)):
        kinds = {_scalar_kind(item) for item in value}
        if None in kinds:
            bad = next(item for item in value if _scalar_kind(item) is None)
            raise StackError(
                f"{where}: list item {bad!r} is not a bool, int64, float or string "
                "(a ROS parameter holds a flat list of one type)"
            )
        if kinds == {int, float}:
            return [float(item) for item in value]
        if len(kinds) > 1:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            raise StackError(f"{where}: list mixes {names}; a ROS parameter list holds one type")
        return list(value)
    what = "null" if value is None else type(value).__name__
    raise StackError(f"{where}: a {what} value cannot be a ROS parameter (use bool, int, float, string or a list of one of them)")


def ros_parameters(label: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """`parameters` as ROS 2 parameters can carry them; StackError names `label.parameter` if not.

    Nested mappings become dotted names (`qos_overrides: {a: 1}` -> `qos_overrides.a`).
    """
    flat: dict[str, Any] = {}

    def visit(prefix: str, mapping: dict) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if not isinstance(key, str) or not key:
                raise StackError(f"{label}.{prefix}{key!r}: parameter names are non-empty strings")
            if isinstance(value, dict):
                if not value:
                    raise StackError(f"{label}.{name}: an empty mapping is no parameter")
                visit(f"{name}.", value)
            else:
                flat[name] = _ros_value(f"{label}.{name}", value)

    visit("", parameters)
    return flat


def _per_robot(value: Any, robot: str, index: int) -> Any:
    """`$(robot)` -> the robot's name, `$(robot_index)` -> its 1-based position in the robot list."""
    if value == ROBOT_INDEX_PLACEHOLDER:
        return index
    if isinstance(value, str) and ROBOT_PLACEHOLDER in value:
        return value.replace(ROBOT_PLACEHOLDER, robot)
    return value


def expand(
    stack: StackSpec,
    robots: list[str] | None = None,
    only: list[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    share_dir: str | None = None,
    enable: list[str] | None = None,
    chain: bool = True,
) -> list[NodeInstance]:
    """Place every enabled node: fleet nodes once, robot nodes once per robot.

    `only` keeps the named nodes; `enable` turns on nodes the file ships with `enabled: false`;
    `overrides` maps node name to parameter values that replace the stack file's (as
    `ros2 launch ... param:=value` would). Without a `chain`, nodes that need one are left out
    (even when enabled or named) and the others take their `without_chain` parameters.
    """
    robots = stack.robots if robots is None else robots
    known = {spec.name for spec in stack.nodes}
    for name in list(only or []) + list(enable or []) + list((overrides or {}).keys()):
        if name not in known:
            raise StackError(f"no node named '{name}' in the stack; known: {', '.join(sorted(known))}")
    instances = []
    selected = [spec for spec in stack.nodes
                if (spec.enabled or spec.name in (enable or [])) and not (only and spec.name not in only)
                and not (spec.needs_chain and not chain)]
    # Sim time only with its clock: nodes told to follow a /clock nobody publishes stand still.
    sim_time = stack.use_sim_time and any(spec.name == stack.clock_node for spec in selected)
    for spec in selected:
        params = dict(spec.parameters)
        if not chain:
            params.update(spec.without_chain)
        params.update((overrides or {}).get(spec.name, {}))
        if sim_time:
            params.setdefault("use_sim_time", True)
        params = resolve_package_paths(params, share_dir)
        # A fleet-wide node that serves every robot (the simulator) is told which ones there are.
        params = {k: (list(robots) if v == ROBOTS_PLACEHOLDER else v) for k, v in params.items()}
        node_name = spec.node_name or spec.name
        for index, namespace in enumerate([spec.namespace or ""] if spec.scope == "fleet" else robots, start=1):
            placed = {k: _per_robot(v, namespace, index) for k, v in params.items()} if spec.scope == "robot" else params
            label = f"{namespace}/{node_name}" if namespace else node_name
            instances.append(
                NodeInstance(
                    name=node_name, concern=spec.concern, namespace=namespace,
                    parameters=ros_parameters(label, placed),
                    respawn=spec.respawn, respawn_delay=spec.respawn_delay, entry=spec.name, scope=spec.scope,
                )
            )
    return instances


def uses_chain(stack: StackSpec, instances: list[NodeInstance]) -> bool:
    """Whether a launch of ``instances`` brings its chain: one of them needs it, or behaves
    differently without it (has `without_chain` parameters)."""
    chained = {spec.name for spec in stack.nodes if spec.needs_chain or spec.without_chain}
    return any((inst.entry or inst.name) in chained for inst in instances)


MAX_DEMO_ROBOTS = 8  # demo keys #1..#8; #9 is the requester's, #0 the deployer's


def parse_robots(text: str) -> list[str] | None:
    """`3` -> robot1, robot2, robot3; `a,b` -> a, b; '' -> None (the stack's list)."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_DEMO_ROBOTS:
            raise StackError(f"robots {text}: between 1 and {MAX_DEMO_ROBOTS} robots (demo keys #1..#{MAX_DEMO_ROBOTS}; #9 is the requester's)")
        return [f"robot{i}" for i in range(1, count + 1)]
    return [r.strip() for r in text.split(",") if r.strip()]
