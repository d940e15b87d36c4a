"""The ROS-free transform buffer against transforms computed independently (plain 2D geometry)."""

import math

import numpy as np
import pytest

from depai_nodes.common.tfbuffer import ExtrapolationError, Transform, TransformBuffer, TransformError


def planar(x: float, y: float, yaw: float, z: float = 0.0) -> Transform:
    return Transform(np.array([x, y, z]), np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))


def by_hand(x, y, yaw, points):
    c, s = math.cos(yaw), math.sin(yaw)
    return np.stack([x + c * points[:, 0] - s * points[:, 1], y + s * points[:, 0] + c * points[:, 1], points[:, 2]], 1)


S = 1_000_000_000


def tree() -> TransformBuffer:
    buf = TransformBuffer()
    buf.add("map", "r/odom", 0, planar(1.0, -2.0, 0.3))
    buf.add("map", "r/odom", 2 * S, planar(1.0, -2.0, 0.3))
    buf.add("r/odom", "r/base_link", 0, planar(0.0, 0.0, 0.0))
    buf.add("r/odom", "r/base_link", 2 * S, planar(2.0, 0.0, math.pi / 2))
    buf.add("r/base_link", "r/lidar_link", 0, planar(0.0, 0.0, 0.0, z=0.5), static=True)
    return buf


def test_chain_composes_like_plane_geometry():
    buf = tree()
    pts = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    got = buf.lookup("map", "r/lidar_link", 2 * S).apply(pts)
    # map <- odom (1, -2, 0.3) <- base (2, 0, pi/2) <- lidar (z 0.5)
    base = by_hand(2.0, 0.0, math.pi / 2, pts)
    expected = by_hand(1.0, -2.0, 0.3, base) + [0, 0, 0.5]
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # and the other way round is its inverse
    back = buf.lookup("r/lidar_link", "map", 2 * S).apply(got)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_interpolates_between_samples_and_refuses_to_extrapolate():
    buf = tree()
    mid = buf.lookup("r/odom", "r/base_link", S)
    np.testing.assert_allclose(mid.translation, [1.0, 0.0, 0.0], atol=1e-9)
    assert mid.yaw == pytest.approx(math.pi / 4)
    with pytest.raises(TransformError, match=r"r/odom -> r/base_link at 3.000 s: samples cover 0.000 .. 2.000 s") as ahead:
        buf.lookup("map", "r/base_link", 3 * S)
    assert isinstance(ahead.value, ExtrapolationError) and ahead.value.ahead  # newer: may still come
    with pytest.raises(ExtrapolationError) as behind:
        buf.lookup("map", "r/base_link", -S)
    assert not behind.value.ahead  # older than the samples: never comes
    assert buf.lookup("map", "r/lidar_link").translation[2] == pytest.approx(0.5)  # latest common time


def test_siblings_resolve_through_their_common_parent():
    buf = tree()
    buf.add("map", "q/odom", 0, planar(5.0, 5.0, 0.0), static=True)
    t = buf.lookup("q/odom", "r/odom", 0)
    np.testing.assert_allclose(t.apply(np.zeros((1, 3)))[0], [1.0 - 5.0, -2.0 - 5.0, 0.0], atol=1e-9)


def test_errors_name_what_is_wrong():
    buf = tree()
    with pytest.raises(TransformError, match="unknown frame 'lidar_link'"):
        buf.lookup("map", "lidar_link", 0)
    buf.add("world", "other", 0, planar(0, 0, 0))
    with pytest.raises(TransformError, match="not connected"):
        buf.lookup("map", "other", 0)
    with pytest.raises(TransformError, match="loop"):
        buf.add("r/lidar_link", "map", 0, planar(0, 0, 0))
    with pytest.raises(TransformError, match="invalid"):
        buf.add("a", "a", 0, planar(0, 0, 0))


def test_inverse_and_product_are_consistent():
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.normal(size=4)
        a = Transform(rng.normal(size=3), q / np.linalg.norm(q))
        ident = a * a.inverse()
        np.testing.assert_allclose(ident.translation, 0, atol=1e-9)
        assert abs(abs(ident.rotation[3]) - 1) < 1e-9


def test_a_jump_back_in_time_clears_the_history_and_keeps_the_static_transforms():
    """A restarted simulator stamps from zero again: its transforms must be usable at once, not
    refused as older than the previous run's samples until its clock catches up."""
    buf = TransformBuffer(cache_s=10.0)
    for t in range(60, 72):  # the previous run, 60..71 s
        buf.add("map", "r/odom", t * S, planar(0.0, 0.0, 0.0))
        buf.add("r/odom", "r/base_link", t * S, planar(float(t), 0.0, 0.0))
    buf.add("r/base_link", "r/lidar_link", 0, planar(0.2, 0.0, 0.0), static=True)
    assert buf.jumps_back == 0
    buf.add("map", "r/odom", 1 * S, planar(0.0, 0.0, 0.0))  # the new run
    buf.add("map", "r/odom", 2 * S, planar(0.0, 0.0, 0.0))
    buf.add("r/odom", "r/base_link", 1 * S, planar(5.0, 0.0, 0.0))
    buf.add("r/odom", "r/base_link", 2 * S, planar(6.0, 0.0, 0.0))
    assert buf.jumps_back == 1
    got = buf.lookup("map", "r/lidar_link", int(1.5 * S))
    np.testing.assert_allclose(got.translation, [5.7, 0.0, 0.0], atol=1e-9)  # new samples + the static mount
    with pytest.raises(TransformError):
        buf.lookup("map", "r/base_link", 65 * S)  # the old timeline is gone
    buf.add("r/odom", "r/base_link", int(1.9 * S), planar(5.9, 0.0, 0.0))  # slightly out of order: not a jump
    assert buf.jumps_back == 1


def test_queue_holds_messages_until_their_transform_comes_then_drops_the_late_and_the_superseded():
    from depai_nodes.common.tfbuffer import TransformQueue

    buf = tree()  # sampled over 0 .. 2 s
    placed: list[str] = []

    def sample(sec: int, x: float) -> None:
        buf.add("map", "r/odom", sec * S, planar(1.0, -2.0, 0.3))
        buf.add("r/odom", "r/base_link", sec * S, planar(x, 0.0, 0.0))

    def place(item):
        name, stamp = item
        buf.lookup("map", "r/base_link", stamp)
        placed.append(name)

    q = TransformQueue(size=2, timeout_s=1.0)
    assert q.hold(("a", 3 * S), now=0.0) is None and q.hold(("b", 4 * S), now=0.1) is None
    assert q.hold(("c", 5 * S), now=0.2) == ("a", 3 * S)  # full: the oldest pushed out
    assert q.retry(place, now=0.3) == [] and len(q) == 2  # still ahead of the samples: held
    sample(5, 4.0)
    assert q.retry(place, now=0.4) == [] and placed == ["b", "c"] and len(q) == 0
    q.hold(("d", 9 * S), now=1.0)
    q.hold(("e", 6 * S), now=1.0)  # older stamp, but newer in the queue: placed; "d" stays ahead
    sample(6, 5.0)
    assert q.retry(place, now=1.5) == [] and placed[-1] == "e" and len(q) == 0  # "d" was older in the queue: superseded
    q.hold(("f", 20 * S), now=2.0)
    dropped = q.retry(place, now=3.5)  # past its timeout
    assert [(d[0][0], round(d[1], 1)) for d in dropped] == [("f", 1.5)] and "samples cover" in str(dropped[0][2])
    q.hold(("g", -S), now=4.0)  # older than the samples: never comes, dropped at once
    assert [d[0][0] for d in q.retry(place, now=4.0)] == ["g"]
    with pytest.raises(ValueError):
        TransformQueue(size=0)
