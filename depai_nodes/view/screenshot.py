"""A picture of the live view of the running demo, taken in headless Chromium over DevTools.

    python -m depai_nodes.view.screenshot --out docs/live_view.png            # runs the demo itself
    python -m depai_nodes.view.screenshot --url http://127.0.0.1:9090/?url=... # a view already running

Without --url it runs `./depai launch --view --duration ...` (its own ROS domain if
ROS_DOMAIN_ID is unset: 91), waits for the view node's URL in the launch output, lets the fleet
drive for `--drive` seconds, opens the viewer, waits until the picture settles (the WebAssembly
viewer's first frame takes ~20 s on a loaded machine), saves the PNG palette-quantized (small
enough for a README) and stops the launch with Ctrl-C (SIGINT: an orderly stop). Chromium and
the launch are always stopped, whatever happens.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .browser import Browser, BrowserError

REPO_ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"live view \(Rerun\) in a browser: (\S+)")


def settle(browser: Browser, timeout: float, min_wait: float = 20.0) -> bytes:
    """Screenshots every few seconds until two agree closely (after min_wait), or timeout; the last one."""
    import numpy as np
    from PIL import Image

    deadline = time.monotonic() + timeout
    time.sleep(min_wait)
    last, png = None, browser.screenshot()
    while time.monotonic() < deadline:
        time.sleep(3.0)
        png = browser.screenshot()
        img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
        if last is not None and np.abs(img - last).mean() < 2.0:
            break
        last = img
    return png


def compress(png: bytes, colors: int = 128) -> bytes:
    """The PNG quantized to a palette (the viewer's flat colours survive it): ~5x smaller."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def shoot(url: str, out: Path, width: int, height: int, timeout: float) -> int:
    with Browser(width=width, height=height) as browser:
        browser.open(url)
        png = settle(browser, timeout)
        if not browser.evaluate("document.querySelectorAll('canvas').length"):
            raise BrowserError(f"no viewer at {url} (the page has no canvas): nothing saved")
    data = compress(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"screenshot: {out} ({len(data) // 1024} KiB, {width}x{height})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "live_view.png")
    parser.add_argument("--url", default="", help="a running view's URL (default: run the demo)")
    parser.add_argument("--drive", type=float, default=40.0, help="s the fleet drives before the picture")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--timeout", type=float, default=120.0, help="s to wait for the picture to settle")
    parser.add_argument("launch_args", nargs="*", help="more `depai launch` arguments (after --)")
    args = parser.parse_args(argv)

    def _terminated(signum, _frame):  # `timeout`, systemd: stop the launch and Chromium on the way out
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminated)
    try:
        if args.url:
            return shoot(args.url, args.out, args.width, args.height, args.timeout)
        env = dict(os.environ)
        env.setdefault("ROS_DOMAIN_ID", "91")
        duration = 3600  # stopped by us (SIGINT) once the picture is taken
        command = [str(REPO_ROOT / "depai"), "launch", "--view", "--duration", f"{duration:g}", *args.launch_args]
        launch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                  cwd=REPO_ROOT, start_new_session=True)
        found: list[str] = []
        ready, moving = threading.Event(), threading.Event()

        tail: list[str] = []

        def read() -> None:
            for line in launch.stdout:
                tail[:] = (tail + [line])[-20:]
                if "FOLLOWING" in line or "driving to" in line:
                    moving.set()
                m = URL_LINE.search(line)
                if m and not found:
                    found.append(m.group(1))
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            deadline = time.monotonic() + 300
            while not ready.wait(timeout=1.0) and launch.poll() is None and time.monotonic() < deadline:
                pass
            if not ready.is_set():
                print("screenshot: the launch printed no live view URL within 300 s; its last lines:\n" + "".join(tail), file=sys.stderr)
                return 1
            # the robots move once their first plan is followed (a fresh chain first funds and admits them)
            while not moving.wait(timeout=1.0) and launch.poll() is None and time.monotonic() < deadline:
                pass
            print(f"screenshot: the demo runs; the view is at {found[0]}; driving {args.drive:g} s")
            time.sleep(args.drive)
            if launch.poll() is not None:
                print(f"screenshot: the launch ended (exit {launch.returncode}) before the picture; its last lines:\n" + "".join(tail),
                      file=sys.stderr)
                return 1
            return shoot(found[0], args.out, args.width, args.height, args.timeout)
        finally:
            if launch.poll() is None:
                launch.send_signal(signal.SIGINT)
                try:
                    launch.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(launch.pid, signal.SIGKILL)
                    launch.wait(timeout=10)
    except BrowserError as error:
        print(f"screenshot: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
