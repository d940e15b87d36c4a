"""Typed errors of the planner concern.

Planning outcomes (no path, goal in an obstacle, ...) are result codes, not exceptions: see
:class:`depai_nodes.planner.core.PlanResult`. Exceptions are for inputs that cannot be used at
all (a map that does not load, a malformed costmap or polygon).
"""


class PlannerError(Exception):
    """Base of every planner error."""


class MapLoadError(PlannerError):
    """A map or filter mask could not be loaded; the message names the file and the reason."""


class InvalidGridError(PlannerError):
    """An occupancy grid (e.g. a received local costmap) is empty, inconsistent or not finite."""


class InvalidPolygonError(PlannerError):
    """A keep-out polygon has too few vertices or non-finite coordinates."""
