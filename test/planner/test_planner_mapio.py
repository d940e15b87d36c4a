"""Map loading: map_server semantics on the real Nav2 maps and on small generated images."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from depai_nodes.planner.errors import MapLoadError
from depai_nodes.planner.mapio import OccupancyMap, load_map


def _pgm(path, img, maxval=255, ascii_=False):
    h, w = img.shape
    if ascii_:
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in img)
        path.write_text(f"P2\n# test\n{w} {h}\n{maxval}\n{body}\n")
    else:
        dtype = ">u2" if maxval > 255 else np.uint8
        path.write_bytes(f"P5\n# comment\n{w} {h}\n{maxval}\n".encode() + img.astype(dtype).tobytes())


def _yaml(path, image, **kw):
    meta = dict(resolution=0.1, origin=[1.0, 2.0, 0.0], negate=0, occupied_thresh=0.65, free_thresh=0.196)
    meta.update(kw)
    lines = [f"image: {image}"] + [f"{k}: {v}" for k, v in meta.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["depot", "warehouse", "tb3_sandbox", "willow-full"])
def test_real_maps_load_with_image_geometry(shared_data, name):
    m = load_map(shared_data / "maps" / f"{name}.yaml")
    img = cv2.imread(str(shared_data / "maps" / f"{name}.pgm"), cv2.IMREAD_UNCHANGED)
    assert m.data.shape == img.shape
    assert set(np.unique(m.data)) <= {-1, 0, 100}
    # Image top row is the last grid row; dark pixels are occupied, 205 grey is unknown.
    assert np.array_equal(m.data[::-1] == 100, (1.0 - img / 255.0) > {"depot": .65, "warehouse": .65}.get(name, .65))
    assert np.array_equal(m.data[::-1] == -1, ((1 - img / 255.0) >= m_free(name)) & ((1 - img / 255.0) <= 0.65))


def m_free(name):
    return {"warehouse": 0.1}.get(name, 0.25 if name == "depot" else 0.196)


def test_speed_mask_scale_mode_matches_nav2(shared_data):
    m = load_map(shared_data / "maps" / "depot_speed.yaml")
    img = cv2.imread(str(shared_data / "maps" / "depot_speed.pgm"), cv2.IMREAD_UNCHANGED)[::-1]
    # occupied_thresh 1.0, free_thresh 0.0: value = rint((1 - p/255) * 100)
    for pixel, value in ((127, 50), (191, 25), (205, 20), (254, 0), (0, 100)):
        assert np.all(m.data[img == pixel] == value), pixel


def test_origin_and_yaw_round_trip(tmp_path):
    img = np.full((4, 6), 254, np.uint8)
    _pgm(tmp_path / "m.pgm", img)
    m = load_map(_yaml(tmp_path / "m.yaml", "m.pgm", origin=[1.0, -2.0, math.pi / 2]))
    x, y = m.cell_to_world(2, 1)
    # yaw 90 deg: grid +x is world +y
    assert x == pytest.approx(1.0 - 1.5 * 0.1) and y == pytest.approx(-2.0 + 2.5 * 0.1)
    c, r = m.world_to_cell(x, y)
    assert (int(c), int(r)) == (2, 1)


def test_negate_raw_ascii_and_16bit(tmp_path):
    img = np.array([[0, 50, 100], [200, 255, 30]], dtype=np.uint16)
    _pgm(tmp_path / "a.pgm", img, ascii_=True)
    raw = load_map(_yaml(tmp_path / "raw.yaml", "a.pgm", mode="raw"))
    assert raw.data[::-1].tolist() == [[0, 50, 100], [-1, -1, 30]]
    neg = load_map(_yaml(tmp_path / "neg.yaml", "a.pgm", negate=1))
    assert neg.data[::-1].tolist() == [[0, -1, -1], [100, 100, 0]]
    _pgm(tmp_path / "b.pgm", img * 257, maxval=65535)
    wide = load_map(_yaml(tmp_path / "b.yaml", "b.pgm"))
    assert wide.data[::-1].tolist() == [[100, 100, -1], [-1, 0, 100]]  # 200/255: occ .216 is unknown


def test_png_with_alpha_is_unknown_in_scale_mode(tmp_path):
    img = np.zeros((2, 2, 4), np.uint8)
    img[..., :3] = 128
    img[..., 3] = 255
    img[0, 0, 3] = 0
    cv2.imwrite(str(tmp_path / "m.png"), img)
    m = load_map(_yaml(tmp_path / "m.yaml", "m.png", mode="scale", occupied_thresh=1.0, free_thresh=0.0))
    assert m.data[::-1].tolist() == [[-1, 50], [50, 50]]


@pytest.mark.parametrize("text,reason", [
    ("image: [unclosed", "malformed YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("resolution: 0.1\norigin: [0, 0, 0]\n", "'image'"),
    ("image: m.pgm\norigin: [0, 0, 0]\n", "'resolution'"),
    ("image: m.pgm\nresolution: -1\norigin: [0, 0, 0]\n", "must be > 0"),
    ("image: m.pgm\nresolution: .1\norigin: [0, 0]\n", "'origin'"),
    ("image: m.pgm\nresolution: .1\norigin: [0, 0, .nan]\n", "'origin'"),
    ("image: m.pgm\nresolution: .1\norigin: [0, 0, 0]\nmode: fancy\n", "unknown 'mode'"),
    ("image: m.pgm\nresolution: .1\norigin: [0, 0, 0]\nfree_thresh: .7\noccupied_thresh: .6\n", "free_thresh"),
    ("image: missing.pgm\nresolution: .1\norigin: [0, 0, 0]\n", "not found"),
    ("image: bad.pgm\nresolution: .1\norigin: [0, 0, 0]\n", "truncated"),
    ("image: junk.png\nresolution: .1\norigin: [0, 0, 0]\n", "cannot decode"),
])
def test_bad_maps_raise_typed_errors(tmp_path, text, reason):
    _pgm(tmp_path / "m.pgm", np.full((3, 3), 254, np.uint8))
    (tmp_path / "bad.pgm").write_bytes(b"P5\n10 10\n255\n" + b"\x00" * 20)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(MapLoadError, match=reason):
        load_map(tmp_path / "m.yaml")


def test_missing_yaml_and_empty_grid(tmp_path):
    with pytest.raises(MapLoadError, match="not found"):
        load_map(tmp_path / "nope.yaml")
    with pytest.raises(MapLoadError, match="non-empty"):
        OccupancyMap(data=np.zeros((0, 5)), resolution=0.1)
