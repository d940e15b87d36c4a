"""The data sets' manifest, checksum verification, where data is read from, and the one-line failure.

Nothing here downloads: fetching is exercised with file:// sources made in the test.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from depai_nodes.data.core import (
    FETCH_COMMAND, DataError, DataFile, DataSet, Derive, Manifest, Source, data_root, fetch, load_manifest, problems,
    require)

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_manifest_lists_every_file_the_tests_read_and_all_verify(shared_data):
    manifest = load_manifest()
    listed = {f.path for _, f in manifest.files()}
    present = {
        p.relative_to(shared_data).as_posix() for p in shared_data.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(shared_data).parts)
        and not p.name.startswith("README")
    }
    assert present <= listed, f"data without a manifest entry (no pinned source): {sorted(present - listed)}"
    assert problems(shared_data, manifest) == []


def test_sources_are_pinned_to_commits_and_licensed():
    urls = []
    for dataset, entry in load_manifest().files():
        assert dataset.licence and dataset.origin
        if entry.url:
            urls.append(entry.url)
        if entry.derive:
            urls += [s.url for s in entry.derive.inputs.values()]
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9.]+", entry.derive.tool), entry.derive.tool  # a pinned tool
        if entry.text is not None:
            assert _sha(entry.text.encode()) == entry.sha256 and entry.note
    assert urls
    for url in urls:
        assert url.startswith("https://") and re.search(r"/[0-9a-f]{40}/", url), f"not pinned to a commit: {url}"


def _one_file_manifest(tmp_path: Path, content: bytes, sha256: str | None = None) -> tuple[Manifest, Path]:
    source = tmp_path / "upstream" / "depot.pgm"
    source.parent.mkdir(parents=True)
    source.write_bytes(content)
    entry = DataFile(path="maps/depot.pgm", sha256=sha256 or _sha(content), url=source.as_uri())
    return Manifest(datasets=[DataSet(name="maps", licence="Apache-2.0", origin="test", files=[entry])]), source


def test_fetch_puts_verified_files_in_place_once(tmp_path):
    manifest, _ = _one_file_manifest(tmp_path, b"P5 4 4 255\n" + bytes(16))
    dest = tmp_path / "cache"
    assert fetch(manifest, dest, log=lambda _: None) == (1, 0)
    assert (dest / "maps" / "depot.pgm").read_bytes().startswith(b"P5")
    assert fetch(manifest, dest, log=lambda _: None) == (0, 1)  # intact: not fetched again
    assert require(manifest, env={"DEPAI_DATA": str(dest)}) == dest


def test_fetch_refuses_a_file_whose_checksum_differs(tmp_path):
    pinned = _sha(b"the file upstream had when it was pinned")
    manifest, source = _one_file_manifest(tmp_path, b"something else now", sha256=pinned)
    dest = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        fetch(manifest, dest, log=lambda _: None)
    message = str(error.value)
    assert "depot.pgm" in message and pinned in message and _sha(b"something else now") in message
    assert not (dest / "maps" / "depot.pgm").exists()
    assert list((dest / "maps").iterdir()) == []  # no partial file left behind


def test_fetch_replaces_a_corrupt_copy(tmp_path):
    content = b"P5 2 2 255\n" + bytes(4)
    manifest, _ = _one_file_manifest(tmp_path, content)
    dest = tmp_path / "cache"
    (dest / "maps").mkdir(parents=True)
    (dest / "maps" / "depot.pgm").write_bytes(b"truncated")
    assert "checksum mismatch" in problems(dest, manifest)[0][1]
    assert fetch(manifest, dest, log=lambda _: None) == (1, 0)
    assert (dest / "maps" / "depot.pgm").read_bytes() == content


def test_unreachable_source_is_one_line(tmp_path):
    manifest, source = _one_file_manifest(tmp_path, b"x")
    source.unlink()
    with pytest.raises(DataError, match=r"^cannot download file://.*depot\.pgm: ") as error:
        fetch(manifest, tmp_path / "cache", log=lambda _: None)
    assert "\n" not in str(error.value)


def test_derived_file_inputs_are_checked_before_the_recipe_runs(tmp_path):
    capture = tmp_path / "scan.pcap"
    capture.write_bytes(b"not the pinned capture")
    derive = Derive(recipe="ouster_first_scan", tool="ouster-sdk==1.0.1", inputs={
        "pcap": Source(url=capture.as_uri(), sha256=_sha(b"the pinned capture")),
        "json": Source(url=capture.as_uri(), sha256=_sha(b"the pinned capture")),
    })
    entry = DataFile(path="lidar/scan.npy", sha256=_sha(b"npy"), derive=derive)
    manifest = Manifest(datasets=[DataSet(name="lidar", licence="BSD-3-Clause", origin="test", files=[entry])])

    def no_tool(requirement):
        raise AssertionError("the decoder must not run on unverified input")

    with pytest.raises(DataError, match="scan.pcap"):
        fetch(manifest, tmp_path / "cache", log=lambda _: None, python_for=no_tool)
    assert not (tmp_path / "cache" / "lidar" / "scan.npy").exists()


def test_text_entry_written_and_checked(tmp_path):
    text = "image: map.pgm\nresolution: 0.1\n"
    entry = DataFile(path="maps/map.yaml", sha256=_sha(text.encode()), text=text, note="test")
    manifest = Manifest(datasets=[DataSet(name="m", licence="BSD", origin="test", files=[entry])])
    assert fetch(manifest, tmp_path, log=lambda _: None) == (1, 0)
    assert (tmp_path / "maps" / "map.yaml").read_text() == text
    wrong = entry.model_copy(update={"sha256": _sha(b"other")})
    with pytest.raises(DataError, match="map.yaml"):
        fetch(Manifest(datasets=[DataSet(name="m", licence="BSD", origin="t", files=[wrong])]), tmp_path / "b", log=lambda _: None)


def test_manifest_entries_are_validated():
    with pytest.raises(ValueError, match="exactly one of url, text, derive"):
        DataFile(path="a", sha256="0" * 64)
    with pytest.raises(ValueError, match="relative path"):
        DataFile(path="../etc/passwd", sha256="0" * 64, text="")
    with pytest.raises(ValueError, match="sha256"):
        DataFile(path="a", sha256="abc", text="")
    with pytest.raises(DataError, match="no data set named 'nope'"):
        load_manifest().files(["nope"])


def test_where_data_is_read_from(tmp_path):
    repo = tmp_path / "clone"
    repo.mkdir()
    cache = tmp_path / "cache"
    env = {"DEPAI_DATA_CACHE": str(cache)}
    assert data_root(env, repo) == (cache, "the data cache")  # a user's clone: no ../shared
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert data_root(env, repo)[0] == tmp_path / "shared" / "data"  # CI: ../shared/data is the default
    assert data_root({**env, "DEPAI_DATA": "/somewhere"}, repo)[0] == Path("/somewhere")  # DEPAI_DATA wins


def test_missing_data_is_one_line_naming_it_and_the_command(tmp_path):
    with pytest.raises(DataError) as error:
        require(env={"DEPAI_DATA": str(tmp_path)})
    message = str(error.value)
    assert "\n" not in message
    assert "maps/depot.pgm missing and 18 more" in message and str(tmp_path) in message
    assert f"`{FETCH_COMMAND}`" in message and "DEPAI_DATA" in message


def test_a_test_needing_absent_data_fails_with_that_line_not_skips(tmp_path):
    env = dict(os.environ, DEPAI_DATA=str(tmp_path / "empty"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "probe_shared_data.py")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 error" in out and "skipped" not in out, out
    lines = [line for line in out.splitlines() if "test data not usable" in line and FETCH_COMMAND in line]
    assert lines, out
    assert "Traceback" not in out


def test_data_command_reports_each_file(tmp_path):
    copy = tmp_path / "copy"
    root, _ = data_root()
    for _, entry in load_manifest().files():
        target = copy / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(root / entry.path)
    broken = copy / "maps" / "depot.yaml"
    broken.unlink()
    broken.write_text("image: depot.pgm\n")
    run = lambda: subprocess.run([sys.executable, "-m", "depai_nodes.cli", "data"], cwd=REPO_ROOT,  # noqa: E731
                                 env=dict(os.environ, DEPAI_DATA=str(copy)), capture_output=True, text=True, timeout=60)
    result = run()
    assert result.returncode == 1
    assert "maps/depot.yaml: checksum mismatch" in result.stdout
    assert "ouster-lidar" in result.stdout and "./depai data fetch" in result.stderr
    broken.unlink()
    broken.symlink_to(root / "maps" / "depot.yaml")
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == 3
