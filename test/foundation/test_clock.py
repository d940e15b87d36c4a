"""common/clock.NodeTime: the node's clock as seconds that never run backwards."""
from depai_nodes.common.clock import NodeTime


def test_follows_its_source_and_rebases_a_jump_back():
    raw = {"t": 100.0}
    jumps = []
    clock = NodeTime(lambda: raw["t"], on_jump=jumps.append)
    assert clock.now() == 100.0
    raw["t"] = 102.5
    assert clock.now() == 102.5
    deadline = clock.now() + 5.0  # taken before the simulator restarts
    raw["t"] = 0.0                # its clock starts again at zero
    assert clock.now() == 102.5 and jumps == [102.5]
    raw["t"] = 5.0                # 5 s of the new run: the deadline is due, not 107 s away
    assert clock.now() >= deadline
    raw["t"] = 6.0
    assert clock.now() == 108.5 and jumps == [102.5]  # one report per jump


def test_a_stopped_clock_stands_still():
    clock = NodeTime(lambda: 42.0)
    assert clock.now() == clock.now() == 42.0
