"""Bring up the DePAI stack with the ROS 2 launch system (stock install).

    ros2 launch depai depai.launch.py
    ros2 launch depai depai.launch.py robots:=robot1,robot2 stack:=/path/to/stack.yaml
    ros2 launch depai depai.launch.py enable:=wallet,identity,telemetry   # after `depai chain up`

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


def _nodes(context):
    from depai_nodes.bringup.stack import expand, load_stack, with_robots

    robots = [r for r in LaunchConfiguration("robots").perform(context).split(",") if r]
    # Validate everything before the first Node action runs: a failure half-way through the
    # list would leave the nodes already started running after `ros2 launch` exits.
    stack = with_robots(load_stack(LaunchConfiguration("stack").perform(context)), robots)
    from depai_nodes.bringup.supervisor import write_params_file

    enable = [n for n in LaunchConfiguration("enable").perform(context).split(",") if n]
    instances = expand(stack, enable=enable)
    params_dir = Path(tempfile.mkdtemp(prefix="depai-launch-"))
    actions = [RegisterEventHandler(OnShutdown(on_shutdown=lambda _event, _context: shutil.rmtree(params_dir, True)))]
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
            additional_env={"DEPAI_SUPERVISOR_PID": str(os.getpid())},
        )
        actions += [node, _no_respawn_on_bad_config(node, inst.label)]
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "stack",
            default_value=[FindPackageShare("depai"), "/config/stack.yaml"],
            description="stack file: which nodes run with which parameters",
        ),
        DeclareLaunchArgument("robots", default_value="", description="comma-separated robot namespaces (default: the stack's)"),
        DeclareLaunchArgument("enable", default_value="", description="comma-separated nodes to run although the stack disables them"),
        OpaqueFunction(function=_nodes),
    ])
