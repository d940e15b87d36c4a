"""The fleet status table: figures from chain events and topics, and how the console shows it."""

import io

from depai_nodes.bringup.console import Console
from depai_nodes.status.core import FRAME_END, FRAME_START, SUMMARY_START, FleetView, render

R1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
R2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TOKEN = 10**18


def view() -> FleetView:
    v = FleetView()
    for name, addr in (("robot1", R1), ("robot2", R2)):
        v.on_account(name, addr)
    v.on_identity("robot1", R1, str(9995 * TOKEN), str(100 * TOKEN))
    v.on_navigation("robot1", 1, "", 3.24, 3)
    v.on_navigation("robot2", 3, "fleet paused", 0.0, 3)
    v.on_policy(3, "chain:31337:0xabc:0xdef", 0.5, False, ["loading-dock"])
    v.block = 311
    for ev in [
        {"event": "TaskPosted", "taskId": 1, "reward": 5 * TOKEN},
        {"event": "TaskPosted", "taskId": 2, "reward": 5 * TOKEN},
        {"event": "TaskPosted", "taskId": 3, "reward": 7 * TOKEN},
        {"event": "TaskPosted", "taskId": 4, "reward": 5 * TOKEN},
        {"event": "TaskAccepted", "taskId": 1, "machine": R1},
        {"event": "TaskCompleted", "taskId": 1, "machine": R1, "reward": 5 * TOKEN},
        {"event": "TaskAccepted", "taskId": 3, "machine": R2},
        {"event": "TaskRefunded", "taskId": 3, "requester": "0x0"},
        {"event": "TaskAccepted", "taskId": 2, "machine": R1.lower()},
        {"event": "BatchAnchored", "machine": R1},
        {"event": "BatchAnchored", "machine": R1},
        {"event": "BatchAnchored", "machine": R2},
        {"event": "MachineRegistered", "machine": R2},
    ]:
        v.on_event(ev)
    return v


def test_counts_payments_tasks_and_batches_per_robot():
    v = view()
    assert v.counts() == {"posted": 4, "open": 1, "accepted": 1, "paid": 1, "refunded": 1, "cancelled": 0}
    assert v.total_paid == 5 * TOKEN
    assert v.task_of(R1) == "#2" and v.task_of(R2) == "-"
    assert v.paid_to(R1) == 1 and v.paid_to(R2) == 0
    lines = render(v, 42.0)
    assert lines[0].startswith(FRAME_START) and lines[-1] == FRAME_END
    assert "block 311" in lines[0] and "policy v3 (chain) max 0.50 m/s" in lines[0] and "keep-out: loading-dock" in lines[0]
    assert "posted 4  open 1  accepted 1  paid 1  refunded 1  total paid 5 FLEET" in lines[1]
    row1 = next(line for line in lines if line.startswith("robot1"))
    assert "FOLLOWING" in row1 and "#2" in row1 and "3.2 m" in row1 and "9995 FLEET" in row1 and "100 FLEET" in row1
    assert row1.split()[-1] == "v3" and row1.split()[-3:-1] == ["2", "1"]  # batches, paid
    row2 = next(line for line in lines if line.startswith("robot2"))
    assert "STOPPED" in row2 and row2.split()[-3:-1] == ["1", "0"]
    assert "before this run" not in lines[1]  # everything counted is this run's
    v.reset_chain()
    assert v.counts()["posted"] == 0 and v.total_paid == 0


def test_a_restored_chain_s_past_is_told_apart_from_this_run():
    """A local chain's state lives on across runs: the robot rows count this run's batches and
    payments, the tasks line counts the chain's tasks and says how many came before this run."""
    v = FleetView()
    v.on_account("robot1", R1)
    v.run_from_block = 100
    for block in (10, 20, 30, 120):
        v.on_event({"event": "BatchAnchored", "machine": R1, "block_number": block})
    v.on_event({"event": "TaskPosted", "taskId": 1, "reward": 5 * TOKEN, "block_number": 11})
    v.on_event({"event": "TaskAccepted", "taskId": 1, "machine": R1, "block_number": 12})
    v.on_event({"event": "TaskCompleted", "taskId": 1, "machine": R1, "reward": 5 * TOKEN, "block_number": 13})
    v.on_event({"event": "TaskPosted", "taskId": 2, "reward": 5 * TOKEN, "block_number": 101})
    v.on_event({"event": "TaskAccepted", "taskId": 2, "machine": R1, "block_number": 102})
    v.on_event({"event": "TaskCompleted", "taskId": 2, "machine": R1, "reward": 5 * TOKEN, "block_number": 130})
    assert v.earlier() == (1, 1, 3)
    assert v.paid_to(R1) == 1 and v.paid_to(R1, this_run=False) == 2
    lines = render(v, 5.0)
    assert "posted 2" in lines[1] and "(before this run, below block 100: 1 posted, 1 paid, 3 batches" in lines[1]
    row = next(line for line in lines if line.startswith("robot1"))
    assert row.split()[-3:-1] == ["1", "1"]  # batches, paid: this run's


def test_without_policy_or_chain_the_table_says_so():
    v = FleetView()
    v.robot("robot1")
    v.chain_error = "unreachable (RpcUnavailableError)"
    head = render(v, 1.0, summary=True)[0]
    assert head.startswith(SUMMARY_START) and "policy: none yet" in head and "unreachable" in head


def test_console_redraws_the_table_in_place_on_a_tty_and_prints_plain_lines_elsewhere():
    frame = render(view(), 10.0)
    plain = io.StringIO()
    c = Console(plain, tty=False)
    for line in ["[x] ignored"] + frame:
        c.line("status", line)
    c.line("robot1/agent", "arrived")
    text = plain.getvalue().splitlines()
    assert text[0] == "[status] [x] ignored"
    assert text[1:1 + len(frame)] == [f"[status] {line}" for line in frame]
    assert "\x1b" not in plain.getvalue() and text[-1] == "[robot1/agent] arrived"

    tty = io.StringIO()
    c = Console(tty, tty=True)
    for line in frame:
        c.line("status", line)
    c.line("robot1/agent", "arrived")
    out = tty.getvalue()
    # the log line is written after erasing the table (cursor up len(frame) lines, clear), then the table again
    assert out.count(f"\x1b[{len(frame)}F\x1b[J") == 1
    assert out.index("[robot1/agent] arrived") > out.index(f"\x1b[{len(frame)}F")
    assert out.rstrip("\n").endswith(FRAME_END) and out.count(FRAME_START) == 2
    summary = render(view(), 11.0, summary=True)
    for line in summary:
        c.line("status", line)
    c.line("depai", "stopped")
    tail = tty.getvalue()[len(out):]
    assert SUMMARY_START in tail and tail.endswith("[depai] stopped\n")  # the summary stays; nothing redrawn after it
    assert FRAME_START not in tail


def test_escape_sequences_from_a_node_line_never_reach_the_terminal():
    # e.g. a task whose station label (written on chain by anyone) carries a clear-screen sequence
    out = io.StringIO()
    c = Console(out, tty=True)
    c.line("robot1/agent", "accepting task 9 (\x1b[2J\x1b]0;pwned\x07dock\r) at (1.00, 2.00)")
    c.line("status", "\x1b[1F== DePAI fleet status forged")
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "accepting task 9 (^[[2J^[]0;pwned?dock?) at (1.00, 2.00)" in text
