"""Run one node in its own process with the behaviour every DePAI node shares.

- Ctrl-C (SIGINT) and SIGTERM both end the process cleanly: the node is destroyed and the ROS
  context shut down, so DDS tells peers the node left instead of letting them time it out.
- A ParameterError at start-up is a configuration mistake, not a crash: it is logged as one fatal
  line naming the parameter, and the process exits with code 2 (the supervisor does not respawn
  on code 2, because restarting cannot fix a bad parameter).
- Any other exception is logged and exits with code 1 (the supervisor respawns those).
- A fatal fault ends the process, wherever it happens: an exception that escapes the executor
  (any callback) or escapes *any* thread of the process (`threading.excepthook`: a worker, a
  service executor spun in its own thread) is logged as one FATAL line with its traceback and
  the process exits with code 1, so the supervisor restarts it. A process never lives on with a
  dead thread, serving nothing. Threads that must survive a bad request catch it themselves.
- One stack, one owner: when `DEPAI_SUPERVISOR_PID` is set (by `depai launch`, and by
  `launch/depai.launch.py` for `ros2 launch`), the node asks the kernel for SIGTERM when its
  parent dies (`PR_SET_PDEATHSIG`), `kill -9` of the launcher included, and exits at once if
  that parent is already gone. Once orphaned it has `ORPHAN_GRACE_S` to stop cleanly before it
  ends itself. Without the variable (a node started by hand) nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

from .params import ParameterError
from .procs import pid_alive

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_BAD_CONFIG = 2

SUPERVISOR_PID_ENV = "DEPAI_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
ORPHAN_GRACE_S = 5.0  # an orphaned node that has not stopped cleanly by then exits hard
FATAL_GRACE_S = 5.0   # after a fatal fault, clean shutdown gets this long before a hard exit


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` to this process when its parent thread exits; False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_supervisor(environ: dict[str, str] | None = None) -> int | None:
    """If a supervisor started us, tie our life to it; returns its pid (None: not supervised).

    The variable is removed from the environment so that processes this node starts (which do
    not share its parent) do not inherit a pid that is not theirs.
    """
    environ = os.environ if environ is None else environ
    value = environ.pop(SUPERVISOR_PID_ENV, None)
    if not value:
        return None
    try:
        supervisor = int(value)
    except ValueError:
        print(f"[WARN] [runner]: ignoring {SUPERVISOR_PID_ENV}={value!r}: not a pid", file=sys.stderr, flush=True)
        return None
    set_parent_death_signal(signal.SIGTERM)
    # Checked *after* prctl: a parent that died before it re-parented us, and no signal will come.
    if os.getppid() != supervisor and not pid_alive(supervisor):
        print(f"[FATAL] [runner]: supervisor (pid {supervisor}) is gone; not starting", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CRASH)
    # (A parent other than a living supervisor is a wrapper in between, e.g. a launch-prefix: the
    # signal then comes when that wrapper dies, which it does with its launcher.)
    return supervisor



def _hard_exit_after(delay_s: float, code: int, why: str) -> None:
    def _timer() -> None:
        time.sleep(delay_s)
        print(f"[FATAL] [runner]: {why}; exiting hard", file=sys.stderr, flush=True)
        os._exit(code)

    threading.Thread(target=_timer, name="hard-exit", daemon=True).start()


def run_node(node_factory: Callable[..., object], args: list[str] | None = None) -> int:
    """Initialise rclpy, build the node, spin until shutdown; return the process exit code."""
    supervisor = die_with_supervisor()

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(args=args if args is not None else sys.argv, context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = None
    executor = SingleThreadedExecutor(context=context)

    # The signal handler only raises a flag. The context stays valid until the node has been
    # destroyed, so shutdown code can still publish (a controller's last zero cmd_vel, a final
    # telemetry status) and a Ctrl-C that lands during construction never invalidates the
    # context under the constructor's feet.
    stop = threading.Event()
    fatal: list[str] = []  # set by a thread that died: the process must end with EXIT_CRASH
    stopping: list[bool] = []  # set once a stop was asked for (signal) or the node is being torn down

    def node_name() -> str:
        try:
            return node.get_name() if node is not None else getattr(node_factory, "__name__", "node")
        except Exception:  # noqa: BLE001 - a half-built node
            return getattr(node_factory, "__name__", "node")

    def request_shutdown(_signum, _frame):
        if supervisor is not None and not stop.is_set() and not pid_alive(supervisor):
            _hard_exit_after(ORPHAN_GRACE_S, EXIT_CRASH, f"orphaned (supervisor pid {supervisor} died) and not stopped within {ORPHAN_GRACE_S:g} s")
        stopping.append(True)
        stop.set()

    def thread_died(hook_args: threading.ExceptHookArgs) -> None:
        if hook_args.exc_type is SystemExit:
            return
        thread = hook_args.thread.name if hook_args.thread is not None else "?"
        text = "".join(traceback.format_exception(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback))
        if stopping and not fatal:
            # A worker tripping over the teardown of a node that was asked to stop: logged, but the
            # stop stays a clean one (the supervisor is not about to restart anything).
            print(f"[ERROR] [{node_name()}]: uncaught exception in thread '{thread}' while stopping\n{text}",
                  file=sys.stderr, end="", flush=True)
            return
        print(f"[FATAL] [{node_name()}]: uncaught exception in thread '{thread}'; ending the process (code 1)\n{text}",
              file=sys.stderr, end="", flush=True)
        if not fatal:
            fatal.append(thread)
            _hard_exit_after(FATAL_GRACE_S, EXIT_CRASH, f"fatal fault in thread '{thread}' and no clean stop within {FATAL_GRACE_S:g} s")
        stop.set()

    previous_hook = threading.excepthook
    threading.excepthook = thread_died
    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)
    code = EXIT_OK
    try:
        node = node_factory(context=context)
        executor.add_node(node)
        start_managed = getattr(node, "start_managed", None)  # a lifecycle node (common/lifecycle.py)
        if callable(start_managed):
            start_managed()
        # spin_once with a timeout, not spin(): Python runs signal handlers only between
        # bytecodes, so a node with no timer and no traffic would never see Ctrl-C otherwise.
        while context.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.25)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterError as error:
        print(f"[FATAL] [{node_name()}]: invalid configuration: {error}", file=sys.stderr, flush=True)
        code = EXIT_BAD_CONFIG
    except Exception:  # noqa: BLE001 - last line of defence: log it, let the supervisor respawn
        print(f"[FATAL] [{node_name()}]: uncaught exception; ending the process (code 1)\n{traceback.format_exc()}",
              file=sys.stderr, end="", flush=True)
        code = EXIT_CRASH
    finally:
        stopping.append(True)
        if fatal:
            code = EXIT_CRASH
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            finalize = getattr(node, "finalize_managed", None)  # a lifecycle node: its shutdown transition
            on_shutdown = finalize if callable(finalize) else getattr(node, "on_shutdown", None)
            if callable(on_shutdown):
                try:
                    on_shutdown()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
            node.destroy_node()
        if context.ok():
            context.try_shutdown()
        threading.excepthook = previous_hook
    return code
