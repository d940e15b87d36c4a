"""`depai verify`: check a telemetry batch against the chain (ROS-free)."""
