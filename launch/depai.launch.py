"""Bring up the DePAI stack with the ROS 2 launch system (stock install).

    ros2 launch depai depai.launch.py
    ros2 launch depai depai.launch.py robots:=robot1,robot2 stack:=/path/to/stack.yaml
    ros2 launch depai depai.launch.py enable:=wallet,identity,telemetry   # after `depai chain up`

Which nodes run and with which parameters comes from config/stack.yaml, read through
depai_nodes.bringup.stack, the same code `depai launch` uses on installs without launch_ros.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
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
    enable = [n for n in LaunchConfiguration("enable").perform(context).split(",") if n]
    actions = []
    for inst in expand(stack, enable=enable):
        node = Node(
            package="depai",
            executable=inst.concern,
            name=inst.name,
            namespace=inst.namespace or None,
            parameters=[inst.parameters],
            respawn=inst.respawn,
            respawn_delay=inst.respawn_delay,
            output="screen",
            emulate_tty=True,
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
