"""Run one node in its own process with the behaviour every DePAI node shares.

- Ctrl-C (SIGINT) and SIGTERM both end the process cleanly: the node is destroyed and the ROS
  context shut down, so DDS tells peers the node left instead of letting them time it out.
- A ParameterError at start-up is a configuration mistake, not a crash: it is logged as one fatal
  line naming the parameter, and the process exits with code 2 (the supervisor does not respawn
  on code 2, because restarting cannot fix a bad parameter).
- Any other exception is logged and exits with code 1 (the supervisor respawns those).
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Callable

from .params import ParameterError

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_BAD_CONFIG = 2


def run_node(node_factory: Callable[..., object], args: list[str] | None = None) -> int:
    """Initialise rclpy, build the node, spin until shutdown; return the process exit code."""
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

    def request_shutdown(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)
    code = EXIT_OK
    try:
        node = node_factory(context=context)
        executor.add_node(node)
        # spin_once with a timeout, not spin(): Python runs signal handlers only between
        # bytecodes, so a node with no timer and no traffic would never see Ctrl-C otherwise.
        while context.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.25)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterError as error:
        name = getattr(node, "get_name", lambda: getattr(node_factory, "__name__", "node"))()
        print(f"[FATAL] [{name}]: invalid configuration: {error}", file=sys.stderr, flush=True)
        code = EXIT_BAD_CONFIG
    except Exception:  # noqa: BLE001 - last line of defence: log it, let the supervisor respawn
        traceback.print_exc()
        code = EXIT_CRASH
    finally:
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            on_shutdown = getattr(node, "on_shutdown", None)
            if callable(on_shutdown):
                try:
                    on_shutdown()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
            node.destroy_node()
        if context.ok():
            context.try_shutdown()
    return code
