"""PointCloud2 <-> NumPy: zero-copy reads of any layout, one-buffer writes, typed errors."""

import array

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField

from depai_nodes.common.pointcloud2 import (
    CloudBuffer, CloudFormatError, array_to_cloud, cloud_to_array, cloud_to_xyz, dtype_from_fields,
    xyz_from_array)

F32, U16, F64, U8 = PointField.FLOAT32, PointField.UINT16, PointField.FLOAT64, PointField.UINT8


def make_cloud(fields, point_step, points: bytes, height=1, width=None, row_step=None, big=False):
    m = PointCloud2()
    m.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields]
    m.point_step = point_step
    m.height = height
    m.width = width if width is not None else len(points) // point_step // max(height, 1)
    m.row_step = row_step if row_step is not None else m.width * point_step
    m.is_bigendian = big
    a = array.array("B")
    a.frombytes(points)
    m.data = a
    return m


def test_padded_layout_is_read_zero_copy():
    # Gazebo/PCL-like layout: x,y,z, 4 bytes padding, intensity, ring, padding to 32 bytes.
    dt = np.dtype({"names": ["x", "y", "z", "intensity", "ring"],
                   "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                   "offsets": [0, 4, 8, 16, 20], "itemsize": 32})
    src = np.zeros(1000, dt)
    rng = np.random.default_rng(1)
    for c in "xyz":
        src[c] = rng.normal(size=1000)
    src["intensity"] = 7.5
    src["ring"] = np.arange(1000) % 128
    msg = make_cloud([("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1), ("intensity", 16, F32, 1),
                      ("ring", 20, U16, 1)], 32, src.tobytes())
    arr = cloud_to_array(msg)
    assert arr.shape == (1000,)
    assert np.shares_memory(arr, np.frombuffer(msg.data, np.uint8))
    assert np.array_equal(arr["ring"], src["ring"]) and np.all(arr["intensity"] == 7.5)
    xyz = cloud_to_xyz(msg)
    assert xyz.shape == (1000, 3) and xyz.dtype == np.float32
    assert np.shares_memory(xyz, np.frombuffer(msg.data, np.uint8))  # strided view, no copy
    assert np.array_equal(xyz[:, 1], src["y"])


def test_fields_in_any_order_and_big_endian():
    # z, intensity, x, y (shuffled order) in big-endian bytes.
    n = 50
    dt = np.dtype({"names": ["z", "intensity", "x", "y"], "formats": [">f4"] * 4,
                   "offsets": [0, 4, 8, 12], "itemsize": 16})
    src = np.zeros(n, dt)
    src["x"], src["y"], src["z"] = np.arange(n), -np.arange(n), 2.0
    msg = make_cloud([("z", 0, F32, 1), ("intensity", 4, F32, 1), ("x", 8, F32, 1), ("y", 12, F32, 1)],
                     16, src.tobytes(), big=True)
    xyz = cloud_to_xyz(msg)
    assert np.array_equal(xyz[:, 0], np.arange(n, dtype=np.float32))
    assert np.array_equal(xyz[:, 1], -np.arange(n, dtype=np.float32))
    assert np.all(xyz[:, 2] == 2.0)


def test_organized_cloud_with_row_padding():
    h, w, ps = 4, 6, 12
    row_step = w * ps + 8  # 8 padding bytes at the end of every row
    rows = []
    for r in range(h):
        pts = np.zeros((w, 3), np.float32)
        pts[:, 0] = r
        pts[:, 1] = np.arange(w)
        rows.append(pts.tobytes() + b"\xee" * 8)
    msg = make_cloud([("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], ps, b"".join(rows),
                     height=h, width=w, row_step=row_step)
    arr = cloud_to_array(msg)
    assert arr.shape == (h, w)
    assert np.shares_memory(arr, np.frombuffer(msg.data, np.uint8))
    assert np.array_equal(arr["x"][:, 0], np.arange(h, dtype=np.float32))
    xyz = xyz_from_array(arr)
    assert xyz.shape == (h * w, 3) and np.array_equal(xyz[w:2 * w, 1], np.arange(w, dtype=np.float32))


def test_float64_xyz_is_converted_and_int_xyz_rejected():
    src = np.zeros(5, [("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    src["x"] = 1.5
    msg = make_cloud([("x", 0, F64, 1), ("y", 8, F64, 1), ("z", 16, F64, 1)], 24, src.tobytes())
    xyz = cloud_to_xyz(msg)
    assert xyz.dtype == np.float32 and np.all(xyz[:, 0] == 1.5)
    bad = make_cloud([("x", 0, U8, 1), ("y", 1, U8, 1), ("z", 2, U8, 1)], 3, bytes(30))
    with pytest.raises(CloudFormatError, match="float32"):
        cloud_to_xyz(bad)


@pytest.mark.parametrize("kwargs, match", [
    (dict(fields=[("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], point_step=12, points=bytes(100)),
     "data has 100 bytes"),
    (dict(fields=[("x", 0, F32, 1), ("y", 4, F32, 1)], point_step=8, points=bytes(80)), "no field"),
    (dict(fields=[("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], point_step=8, points=bytes(80)),
     "does not fit"),
    (dict(fields=[("x", 0, F32, 1), ("y", 2, F32, 1), ("z", 8, F32, 1)], point_step=12, points=bytes(120)),
     "overlap"),
    (dict(fields=[("x", 0, 99, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], point_step=12, points=bytes(120)),
     "unknown datatype"),
    (dict(fields=[("x", 0, F32, 1), ("x", 4, F32, 1), ("z", 8, F32, 1)], point_step=12, points=bytes(120)),
     "twice"),
    (dict(fields=[("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], point_step=0, points=b""),
     "point_step"),
])
def test_malformed_clouds_raise_typed_errors(kwargs, match):
    with pytest.raises(CloudFormatError, match=match):
        msg = make_cloud(kwargs["fields"], kwargs["point_step"], kwargs["points"],
                         width=10 if kwargs["point_step"] else 0)
        cloud_to_xyz(msg)


def test_row_step_smaller_than_row_is_rejected():
    msg = make_cloud([("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], 12, bytes(240),
                     height=2, width=10, row_step=100)
    with pytest.raises(CloudFormatError, match="row_step"):
        cloud_to_array(msg)


def test_empty_cloud_gives_empty_arrays():
    msg = make_cloud([("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1)], 12, b"", width=0)
    assert cloud_to_xyz(msg).shape == (0, 3)


def test_cloud_buffer_builds_message_on_its_own_memory_and_round_trips():
    dt = np.dtype({"names": ["x", "y", "z", "intensity", "ring"],
                   "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                   "offsets": [0, 4, 8, 16, 20], "itemsize": 24})
    buf = CloudBuffer(dt, 128 * 16)
    buf.xyz[:] = np.arange(128 * 16 * 3, dtype=np.float32).reshape(-1, 3)
    buf.points["ring"] = np.repeat(np.arange(128), 16)
    msg = buf.to_msg("lidar_link", height=128)
    # The setter keeps an array.array('B') as is (field checks on) or memcpys it (checks off):
    # either way no per-byte Python, and the bytes are the buffer's.
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    assert msg.data.tobytes() == buf.data.tobytes()
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (128, 16, 24, 24 * 16)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "ring"]
    back = cloud_to_array(msg)
    assert back.shape == (128, 16)
    assert np.array_equal(back["ring"][:, 0], np.arange(128))
    assert np.array_equal(xyz_from_array(back), buf.xyz)
    # Serialization round trip through rclpy's C typesupport (what DDS carries).
    from rclpy.serialization import deserialize_message, serialize_message
    again = deserialize_message(serialize_message(msg), PointCloud2)
    assert np.array_equal(cloud_to_xyz(again), buf.xyz)


def test_array_to_cloud_structured_round_trip():
    src = np.zeros((3, 5), [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    src["x"] = np.arange(15).reshape(3, 5)
    msg = array_to_cloud(src, "f")
    assert msg.height == 3 and msg.width == 5 and msg.header.frame_id == "f"
    assert np.array_equal(cloud_to_array(msg)["x"], src["x"])
    with pytest.raises(CloudFormatError):
        array_to_cloud(np.zeros((4, 3), np.float32))


def test_dtype_from_fields_count_gives_subarray():
    fields = [PointField(name="x", offset=0, datatype=F32, count=1),
              PointField(name="y", offset=4, datatype=F32, count=1),
              PointField(name="z", offset=8, datatype=F32, count=1),
              PointField(name="desc", offset=12, datatype=F32, count=4)]
    dt = dtype_from_fields(fields, 28)
    assert dt["desc"].shape == (4,) and dt.itemsize == 28
