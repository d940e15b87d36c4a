"""Task agent: turns tasks (a patrol of waypoints) into goals for the planner and follows them through."""
