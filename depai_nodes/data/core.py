"""The public data sets the tests and benchmarks read: where they are, whether they are intact, and
how to get a pinned, checksummed copy from upstream (ROS-free).

`manifest.yaml` beside this file lists every file with its sha256 and how to obtain it:

- `url`: downloaded as-is from a pinned upstream commit;
- `text`: a small file written from the manifest itself (a map's YAML that upstream states only as
  command-line arguments), with the provenance in `note`;
- `derive`: made from checksummed upstream inputs by a named recipe (the Ouster sweeps are decoded
  from the Ouster SDK's test captures with the `ouster-sdk` package, in a tool environment of its
  own); the result must match its sha256 too.

Where the data is read from (`data_root`): `DEPAI_DATA` when set; else `../shared/data` beside the
repository when it exists (CI); else the cache (`DEPAI_DATA_CACHE`, default
`~/.cache/depai/data`), which `depai data fetch` fills.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from depai_nodes.common.yamlfile import load_yaml_model

__all__ = [
    "DataError", "Source", "DataFile", "DataSet", "Manifest", "MANIFEST", "FETCH_COMMAND",
    "load_manifest", "sha256_file", "data_root", "cache_dir", "check", "problems", "require", "require_or_exit",
    "fetch",
]

MANIFEST = Path(__file__).with_name("manifest.yaml")
REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_COMMAND = "./depai data fetch"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DataError(RuntimeError):
    """Data is missing, corrupt, or cannot be fetched; the message is one line saying what to do."""


def _sha(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError(f"'{value}' is not a sha256 (64 lowercase hex digits)")
    return value


class Source(BaseModel):
    """An upstream file, pinned by URL (a commit, not a branch) and checksum."""

    model_config = ConfigDict(extra="forbid")

    url: str
    sha256: str

    _check_sha = field_validator("sha256")(classmethod(lambda cls, v: _sha(v)))


class Derive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: Literal["ouster_first_scan"]
    tool: str = Field(description="pip requirement of the tool environment that runs the recipe")
    inputs: dict[str, Source]


class DataFile(BaseModel):
    """One file of a data set, at `path` under the data root."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    url: str | None = None
    text: str | None = None
    derive: Derive | None = None
    note: str = ""

    _check_sha = field_validator("sha256")(classmethod(lambda cls, v: _sha(v)))

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(f"'{value}' must be a relative path inside the data root")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> DataFile:
        ways = [w for w in ("url", "text", "derive") if getattr(self, w) is not None]
        if len(ways) != 1:
            raise ValueError(f"{self.path}: give exactly one of url, text, derive (got {ways or 'none'})")
        return self


class DataSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    licence: str
    origin: str
    files: list[DataFile]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[DataSet]

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        paths = [f.path for d in self.datasets for f in d.files]
        dup = sorted({p for p in paths if paths.count(p) > 1})
        if dup:
            raise ValueError(f"files listed twice: {', '.join(dup)}")
        return self

    def files(self, only: list[str] | None = None) -> list[tuple[DataSet, DataFile]]:
        names = {d.name for d in self.datasets}
        for name in only or []:
            if name not in names:
                raise DataError(f"no data set named '{name}'; known: {', '.join(sorted(names))}")
        return [(d, f) for d in self.datasets if not only or d.name in only for f in d.files]


def load_manifest(path: str | Path = MANIFEST) -> Manifest:
    return load_yaml_model(path, Manifest, DataError, "data manifest")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DEPAI_DATA_CACHE"):
        return Path(env["DEPAI_DATA_CACHE"])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "depai" / "data"


def data_root(env: dict[str, str] | None = None, repo_root: Path = REPO_ROOT) -> tuple[Path, str]:
    """The directory data is read from, and why that one (for messages)."""
    env = os.environ if env is None else env
    if env.get("DEPAI_DATA"):
        return Path(env["DEPAI_DATA"]), "DEPAI_DATA"
    shared = repo_root.parent / "shared" / "data"
    if shared.is_dir():
        return shared, "../shared/data beside the repository"
    return cache_dir(env), "the data cache"


def check(root: Path, entry: DataFile) -> str | None:
    """None when `root/entry.path` is there with the right checksum, else what is wrong."""
    path = root / entry.path
    if not path.is_file():
        return "missing"
    actual = sha256_file(path)
    if actual != entry.sha256:
        return f"checksum mismatch (sha256 {actual[:12]}..., expected {entry.sha256[:12]}...)"
    return None


def problems(root: Path, manifest: Manifest, only: list[str] | None = None) -> list[tuple[DataFile, str]]:
    return [(f, why) for _, f in manifest.files(only) if (why := check(root, f)) is not None]


def require(manifest: Manifest | None = None, env: dict[str, str] | None = None, repo_root: Path = REPO_ROOT) -> Path:
    """The data root when every listed file is intact; else DataError, one line naming what is
    missing and the command that gets it."""
    manifest = manifest or load_manifest()
    root, why = data_root(env, repo_root)
    bad = problems(root, manifest)
    if not bad:
        return root
    first, reason = bad[0]
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    sets = sorted({d.name for d, f in manifest.files() if any(f is b for b, _ in bad)})
    raise DataError(
        f"test data not usable: {first.path} {reason}{more} in {root} ({why}; data sets {', '.join(sets)}); "
        f"get it with `{FETCH_COMMAND}`, or point DEPAI_DATA at a local copy"
    )


def require_or_exit() -> Path:
    """`require()` for scripts (benchmarks): exits with the one-line message instead of a traceback."""
    try:
        return require()
    except DataError as error:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {error}") from None


# --------------------------------------------------------------------------- fetching

Downloader = Callable[[str, Path], None]


def download(url: str, target: Path, timeout: float = 60.0) -> None:
    """Fetch `url` into `target` (http(s) or file://)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason}") from None


def _fetch_verified(source_url: str, sha256: str, target: Path, downloader: Downloader) -> None:
    """Download to a temporary file beside `target`, check the sha256, then move it in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        downloader(source_url, tmp)
        actual = sha256_file(tmp)
        if actual != sha256:
            raise DataError(f"{target.name}: {source_url} has sha256 {actual}, the manifest pins {sha256}; not used")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_verified(data: bytes, sha256: str, target: Path) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DataError(f"{target.name}: the manifest's text has sha256 {actual}, it pins {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def tool_python(requirement: str, tools_dir: Path, log: Callable[[str], None]) -> Path:
    """A virtual environment of its own (not the project's) with `requirement` installed; cached."""
    key = hashlib.sha256(f"{requirement} {sys.version_info[:2]}".encode()).hexdigest()[:12]
    venv = tools_dir / f"venv-{key}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.is_file() and python.exists():
        return python
    log(f"installing {requirement} into {venv} (once)")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement, "numpy"],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] if isinstance(exc.stderr, str) else []
        raise DataError(f"cannot install {requirement} for decoding: {' '.join(tail) or exc}") from None
    stamp.write_text(requirement)
    return python


def _derive(entry: DataFile, dest: Path, downloader: Downloader, log: Callable[[str], None],
            python_for: Callable[[str], Path]) -> None:
    assert entry.derive is not None
    sources = dest / ".sources"
    inputs = {}
    for role, source in entry.derive.inputs.items():
        target = sources / PurePosixPath(source.url).name
        if not (target.is_file() and sha256_file(target) == source.sha256):
            log(f"  {role}: {source.url}")
            _fetch_verified(source.url, source.sha256, target, downloader)
        inputs[role] = target
    python = python_for(entry.derive.tool)
    out = dest / entry.path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    script = Path(__file__).with_name("recipes.py")
    args = [str(python), str(script), entry.derive.recipe, str(tmp)] + [f"{k}={v}" for k, v in sorted(inputs.items())]
    result = subprocess.run(args, capture_output=True, text=True)
    try:
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"{entry.path}: recipe {entry.derive.recipe} failed: {last}")
        actual = sha256_file(tmp)
        if actual != entry.sha256:
            raise DataError(f"{entry.path}: decoded file has sha256 {actual}, the manifest pins {entry.sha256}; not used")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    manifest: Manifest,
    dest: Path,
    only: list[str] | None = None,
    downloader: Downloader = download,
    log: Callable[[str], None] = print,
    python_for: Callable[[str], Path] | None = None,
) -> tuple[int, int]:
    """Make every listed file present and intact under `dest`; (fetched, already there).

    Every byte is checked against the manifest before it is put in place: a file that does not
    match is refused (DataError) and nothing partial is left where the tests look.
    """
    if python_for is None:
        def python_for(requirement: str) -> Path:
            return tool_python(requirement, dest / ".tools", log)
    fetched = kept = 0
    for dataset, entry in manifest.files(only):
        target = dest / entry.path
        if check(dest, entry) is None:
            kept += 1
            continue
        log(f"{dataset.name}: {entry.path}")
        if entry.url is not None:
            _fetch_verified(entry.url, entry.sha256, target, downloader)
        elif entry.text is not None:
            _write_verified(entry.text.encode(), entry.sha256, target)
        else:
            _derive(entry, dest, downloader, log, python_for)
        fetched += 1
    return fetched, kept
