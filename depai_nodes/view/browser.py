"""Headless Chromium driven over the DevTools protocol, for pictures of the live view (ROS-free).

`ensure_chromium()` finds Debian's `chromium` and, when it is missing, installs it with apt
(root, or passwordless sudo), idempotently: a machine that has it never calls apt. WebGL runs
on SwiftShader (ANGLE), so no GPU is needed. `Browser` starts Chromium with a fresh profile, the
network features off (the machine may be offline), and remote debugging on a free port; `shot()`
opens a URL, waits for the page (Rerun's WebAssembly viewer takes ~20 s to draw its first frame
on a loaded machine: `--screenshot` returns before that), and captures a PNG over the protocol.
Chromium is always stopped (its whole process group) when the `with` block ends.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["BrowserError", "ensure_chromium", "Browser"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
APT_PACKAGES = ("chromium",)


class BrowserError(RuntimeError):
    """Chromium is missing, cannot be installed, or did not answer."""


def ensure_chromium(say=print) -> str:
    """The path of a Chromium binary; installs Debian's `chromium` with apt when none is found."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    if os.geteuid() == 0:
        apt = ["apt-get"]
    elif shutil.which("sudo") and subprocess.call(["sudo", "-n", "true"], stderr=subprocess.DEVNULL) == 0:
        apt = ["sudo", "apt-get"]
    else:
        raise BrowserError(f"no Chromium found; install it with: sudo apt-get install {' '.join(APT_PACKAGES)}")
    say(f"apt-get install {' '.join(APT_PACKAGES)} (headless pictures of the live view)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*apt, "update", "-qq"], env=env, check=False)
    code = subprocess.call([*apt, "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES], env=env)
    path = next((shutil.which(n) for n in CANDIDATES if shutil.which(n)), None)
    if code != 0 or not path:
        raise BrowserError(f"apt-get install {' '.join(APT_PACKAGES)} failed (exit {code})")
    return path


class Browser:
    def __init__(self, width: int = 1600, height: int = 1000, binary: str | None = None) -> None:
        self.binary = binary or ensure_chromium()
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="depai-chromium-")
        self.process: subprocess.Popen | None = None
        self._ws = None
        self._id = 0

    def __enter__(self) -> Browser:
        args = [
            self.binary, "--headless=new", "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
            f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "--remote-allow-origins=*",
            f"--window-size={self.width},{self.height}", "about:blank",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BrowserError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        from websockets.sync.client import connect

        self._connection = connect(page["webSocketDebuggerUrl"], max_size=256 * 1024 * 1024, open_timeout=10)
        self._ws = self._connection.__enter__()
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        return self

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        """One DevTools command; its result (events in between are skipped)."""
        self._id += 1
        my_id = self._id
        self._ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no answer within {timeout} s")
            try:
                reply = json.loads(self._ws.recv(timeout=left))
            except TimeoutError:
                raise BrowserError(f"{method}: no answer within {timeout:g} s (a loaded machine renders slowly)") from None
            if reply.get("id") == my_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", timeout=180.0, format="png")["data"])

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")

    def __exit__(self, *exc) -> None:
        try:
            if self._ws is not None:
                self._connection.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - closing
            pass
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)
