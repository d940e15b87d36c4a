"""Bring up the DePAI stack with the ROS 2 launch system (stock install).

    ros2 launch depai depai.launch.py
    ros2 launch depai depai.launch.py robots:=robot1,robot2 stack:=/path/to/stack.yaml

Which nodes run and with which parameters comes from config/stack.yaml, read through
depai_nodes.bringup.stack, the same code `depai launch` uses on installs without launch_ros.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _nodes(context):
    from depai_nodes.bringup.stack import expand, load_stack

    stack = load_stack(LaunchConfiguration("stack").perform(context))
    robots = [r for r in LaunchConfiguration("robots").perform(context).split(",") if r]
    return [
        Node(
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
        for inst in expand(stack, robots=robots or None)
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "stack",
            default_value=[FindPackageShare("depai"), "/config/stack.yaml"],
            description="stack file: which nodes run with which parameters",
        ),
        DeclareLaunchArgument("robots", default_value="", description="comma-separated robot namespaces (default: the stack's)"),
        OpaqueFunction(function=_nodes),
    ])
