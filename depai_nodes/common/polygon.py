"""Plain polygon geometry (numpy, ROS-free) for keep-out zones: validity and signed distance.

A keep-out zone is a simple polygon (no self-intersection, non-zero area). The controller asks
how far a robot centre is from a zone (negative inside), so a circular footprint of radius r
overlaps the zone exactly when ``signed_distance < r``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_AREA", "polygon_area", "polygon_problem", "signed_distance"]

MIN_AREA = 1e-4  # m^2; a zone smaller than 1 cm^2 is a typo, not a rule


def polygon_area(pts) -> float:
    """Unsigned area (shoelace)."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _segments_cross(a, b, c, d) -> bool:
    """Closed segments ab and cd share a point."""
    def orient(p, q, r):
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return 0 if abs(v) < 1e-12 else (1 if v > 0 else -1)

    def on(p, q, r):  # r on segment pq, given collinear
        return min(p[0], q[0]) - 1e-12 <= r[0] <= max(p[0], q[0]) + 1e-12 and \
            min(p[1], q[1]) - 1e-12 <= r[1] <= max(p[1], q[1]) + 1e-12

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return (o1 == 0 and on(a, b, c)) or (o2 == 0 and on(a, b, d)) or \
        (o3 == 0 and on(c, d, a)) or (o4 == 0 and on(c, d, b))


def polygon_problem(pts) -> str | None:
    """Why ``pts`` is not a usable zone polygon (None when it is): too few vertices, not finite,
    area below MIN_AREA (all on a line, repeated points), or edges that cross each other."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return f"needs at least 3 vertices, has {len(p)}"
    if not np.isfinite(p).all():
        return "vertices must be finite numbers"
    area = polygon_area(p)
    if area < MIN_AREA:
        return f"degenerate polygon (area {area:.2g} m^2)"
    n = len(p)
    if n <= 200:  # O(n^2); real zones have a handful of vertices
        for i in range(n):
            a, b = p[i], p[(i + 1) % n]
            for j in range(i + 2, n):
                if i == 0 and j == n - 1:
                    continue  # adjacent through the closing edge
                if _segments_cross(a, b, p[j], p[(j + 1) % n]):
                    return f"edges {i} and {j} cross (not a simple polygon)"
    return None


def signed_distance(pts, xs, ys) -> np.ndarray:
    """Distance from each point (xs[k], ys[k]) to the polygon's boundary, negative inside."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    x = np.atleast_1d(np.asarray(xs, dtype=np.float64))[:, None]
    y = np.atleast_1d(np.asarray(ys, dtype=np.float64))[:, None]
    ax, ay = p[:, 0][None, :], p[:, 1][None, :]
    q = np.roll(p, -1, axis=0)
    bx, by = q[:, 0][None, :], q[:, 1][None, :]
    ex, ey = bx - ax, by - ay
    ll = ex * ex + ey * ey
    t = np.clip(((x - ax) * ex + (y - ay) * ey) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
    d = np.hypot(x - (ax + t * ex), y - (ay + t * ey)).min(axis=1)
    # Even-odd rule: a ray to +x crosses the boundary an odd number of times from inside.
    straddle = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = ax + (y - ay) * ex / np.where(ey != 0, ey, 1.0)
    inside = (np.count_nonzero(straddle & (x < xc), axis=1) % 2) == 1
    return np.where(inside, -d, d)
