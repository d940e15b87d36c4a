"""Python distribution of depai_nodes, for the `depai` console command.

The ROS package itself is built by colcon through CMakeLists.txt (ament_cmake, because rosidl
interface generation needs CMake); that installs depai_nodes into the overlay. This file only
adds what a Python user expects on top: `pip install -e .` puts the `depai` command into the
active environment (scripts/setup.sh does this on the pip path).
"""

from pathlib import Path

from setuptools import find_packages, setup


def requirements() -> list[str]:
    lines = (Path(__file__).parent / "requirements" / "python.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="depai",
    version="0.1.0",
    description="DePAI: a ROS 2 stack for decentralized physical AI",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["depai_nodes", "depai_nodes.*"]),
    install_requires=requirements(),
    entry_points={"console_scripts": ["depai = depai_nodes.cli:main"]},
)
