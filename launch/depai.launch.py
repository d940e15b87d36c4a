"""Bring up the DePAI stack with the ROS 2 launch system (stock install).

    ros2 launch depai depai.launch.py
    ros2 launch depai depai.launch.py robots:=robot1,robot2 stack:=/path/to/stack.yaml
    ros2 launch depai depai.launch.py chain:=none          # no chain: the patrol under config/policy.yaml
    ros2 launch depai depai.launch.py chain:=agung fresh:=false   # chain: local (default) | none | NAME | FILE
    ros2 launch depai depai.launch.py vote_at:=60         # the DAO's mid-run vote after 60 s (0: none)

The chain comes with the launch as with `depai launch` (depai_nodes/bringup/chain.py, the same
code): the stack's `chain:` section (default: the pinned local anvil, restored from its state
file, `fresh:=true` starts over; the robots' and the requester's accounts funded), started
before the first node, and stopped when `ros2 launch` exits (and by the kernel if it is killed:
PR_SET_PDEATHSIG). Every node gets its config as DEPAI_CHAIN_CONFIG.

Which nodes run and with which parameters comes from config/stack.yaml, read through
depai_nodes.bringup.stack, the same code `depai launch` uses on installs without launch_ros.
Each node gets its parameters as a parameter file written by that same code (not launch_ros's
dict form, which cannot carry an empty list such as `simulator.spawn_poses: []`); a value no ROS
parameter can hold stops the launch before any node starts, naming `node.parameter`.

Run it outside the repository root: there `ros2 launch depai ...` takes the `./depai` script for
the launch file. Stop it with SIGINT (Ctrl-C): SIGTERM to `ros2 launch` leaves its nodes running
(ros2/launch#666); under systemd use KillSignal=SIGINT, under docker `STOPSIGNAL SIGINT`.
Whatever ends the `ros2 launch` process (kill -9 included), its nodes end with it: each is
started with DEPAI_SUPERVISOR_PID, so its runner asks the kernel for SIGTERM when the launch
process dies (PR_SET_PDEATHSIG; depai_nodes/common/runner.py).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events import matches_action
from launch.events.process import ShutdownProcess
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

EXIT_BAD_CONFIG = 2  # depai_nodes.common.runner: invalid configuration; restarting cannot fix it


def _no_respawn_on_bad_config(node: Node, label: str) -> RegisterEventHandler:
    """launch respawns after any exit; like `depai launch`, do not respawn after exit code 2."""

    def on_exit(event, _context):
        if event.returncode != EXIT_BAD_CONFIG:
            return None
        return [
            LogInfo(msg=f"{label} exited: invalid configuration (code 2); not restarting"),
            EmitEvent(event=ShutdownProcess(process_matcher=matches_action(node))),
        ]

    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))


def _chain_up(stack, instances, chain_arg: str, fresh: str):
    """The stack's chain, brought up by depai launch's code; stopped when this process exits."""
    from depai_nodes.bringup.chain import bring_up
    from depai_nodes.chain.config import repo_root

    if fresh.strip().lower() not in ("true", "false", "1", "0", ""):
        raise ValueError(f"fresh:={fresh}: true or false")
    network = chain_arg if chain_arg not in ("", "local") else (None if stack.chain.network == "local" else stack.chain.network)
    say = lambda text: print(f"[depai] {text}", flush=True)  # noqa: E731
    run = bring_up(stack.chain, network=network, fresh=fresh.strip().lower() in ("true", "1"),
                   wallets=[i for i in instances if i.concern == "wallet"], robots=stack.robots, repo=repo_root(), say=say)
    atexit.register(run.down, say)  # after the nodes are gone: anvil writes its state as it exits
    return run


def _dao_round(stack, run, vote_at: str):
    """The DAO's mid-run Governor round, as `depai launch` runs it (depai_nodes/bringup/dao_round.py):
    local chain only, `vote_at` seconds after the nodes start (default: the stack's dao_round.at;
    0: none). Ended before the chain goes down (atexit runs last-registered first)."""
    text = vote_at.strip()
    try:
        at = stack.dao_round.at if text in ("", "default") else float(text)
    except ValueError:
        raise ValueError(f"vote_at:={vote_at}: seconds (0: no vote)") from None
    if at <= 0 or run.mode != "local" or run.config_path is None:
        return None
    from depai_nodes.bringup.dao_round import DaoRound, DaoRoundError, plan_round

    say = lambda text: print(f"[dao] {text}", flush=True)  # noqa: E731
    try:
        plan_round(stack.dao_round)
    except DaoRoundError as error:
        say(f"no vote: {error}")
        return None
    dao_round = DaoRound(stack.dao_round, at, str(run.config_path), list(stack.robots), say, report=False)
    atexit.register(dao_round.stop)
    return dao_round.start()


def _nodes(context):
    from depai_nodes.bringup.stack import expand, load_stack, parse_robots, uses_chain, with_robots

    robots = parse_robots(LaunchConfiguration("robots").perform(context))  # a count or a list
    # Validate everything before the first Node action runs: a failure half-way through the
    # list would leave the nodes already started running after `ros2 launch` exits.
    stack = with_robots(load_stack(LaunchConfiguration("stack").perform(context)), robots)
    from depai_nodes.bringup.supervisor import write_params_file

    enable = [n for n in LaunchConfiguration("enable").perform(context).split(",") if n]
    chain_arg = LaunchConfiguration("chain").perform(context).strip()
    instances = expand(stack, enable=enable, chain=chain_arg != "none")
    env = {"DEPAI_SUPERVISOR_PID": str(os.getpid())}  # die with `ros2 launch`, kill -9 included (common/runner.py)
    env.update(_fastdds_profile())
    actions = []
    if chain_arg != "none" and uses_chain(stack, instances):
        run = _chain_up(stack, instances, chain_arg, LaunchConfiguration("fresh").perform(context))
        env["DEPAI_CHAIN_CONFIG"] = str(run.config_path)
        _dao_round(stack, run, LaunchConfiguration("vote_at").perform(context))
    params_dir = Path(tempfile.mkdtemp(prefix="depai-launch-"))
    actions.append(RegisterEventHandler(OnShutdown(on_shutdown=lambda _event, _context: shutil.rmtree(params_dir, True))))
    for inst in instances:
        node = Node(
            package="depai",
            executable=inst.concern,
            name=inst.name,
            namespace=inst.namespace or None,
            parameters=[str(write_params_file(inst, params_dir))],
            respawn=inst.respawn,
            respawn_delay=inst.respawn_delay,
            output="screen",
            emulate_tty=True,
            # Die with `ros2 launch`, kill -9 included (depai_nodes/common/runner.py: PR_SET_PDEATHSIG).
            additional_env=env,
        )
        actions += [node, _no_respawn_on_bad_config(node, inst.label)]
    return actions


def _fastdds_profile() -> dict[str, str]:
    """The stack's Fast DDS profile (config/fastdds.xml: a shared-memory segment that holds a
    LiDAR sweep) for every node, unless the user chose one."""
    chosen = os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    profile = chosen or str(Path(__file__).resolve().parents[1] / "config" / "fastdds.xml")
    return {"FASTRTPS_DEFAULT_PROFILES_FILE": profile, "FASTDDS_DEFAULT_PROFILES_FILE": profile}


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "stack",
            default_value=[FindPackageShare("depai"), "/config/stack.yaml"],
            description="stack file: which nodes run with which parameters",
        ),
        DeclareLaunchArgument("robots", default_value="", description="a count (2: robot1,robot2) or comma-separated robot namespaces (default: the stack's)"),
        DeclareLaunchArgument("enable", default_value="", description="comma-separated nodes to run although the stack disables them"),
        DeclareLaunchArgument("chain", default_value="", description="'' or local: the stack's chain (a local anvil by default); none: no chain; or a network NAME / config FILE"),
        DeclareLaunchArgument("fresh", default_value="false", description="true: start a new local chain instead of restoring the saved one"),
        DeclareLaunchArgument("vote_at", default_value="", description="s after the nodes start for the DAO's mid-run vote on the local chain (default: the stack's dao_round.at; 0: none)"),
        OpaqueFunction(function=_nodes),
    ])
