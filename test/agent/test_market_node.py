"""The agent in market mode as its own process over real DDS, on a real anvil with the contracts
deployed, with a real wallet (the key) and a real telemetry node (the arrival record anchored,
its proof served): a posted task is accepted, driven to, proven and paid to the machine that did
it; two agents race for one task (one wins, the other moves on); an agent killed mid-task
resumes it from chain state after its restart (nothing accepted twice, paid once).

The planner and controller (and the robot's odometry) are played by the test's probe, as in
test_agent_node.py; the wallets (wallet/accept_task, wallet/complete_task, wallet/anchor_batch)
and telemetry are the real nodes."""

from __future__ import annotations

import math
import threading
import time

from chainkit import MACHINE, MACHINE2, REQUESTER, registered_machine, wait_for
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path

from depai.msg import FleetPolicy, NavigationStatus
from depai.srv import PlanPath
from depai_nodes.chain.config import save_config
from depai_nodes.chain.deploy import TOKEN
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.models import TaskStatus
from depai_nodes.common.qos import LATCHED_QOS, RELIABLE_QOS

STATES = {"IDLE": NavigationStatus.IDLE, "FOLLOWING": NavigationStatus.FOLLOWING,
          "ARRIVED": NavigationStatus.ARRIVED, "STOPPED": NavigationStatus.STOPPED}


class FakeRobot:
    """One robot's planner (plan_path, `plan`), controller (navigation_status at 20 Hz) and
    odometry, played by the probe: a followed path arrives after `drive_s`, odom jumps to the goal."""

    def __init__(self, probe, ns: str, start=(0.0, 0.0), drive_s: float = 0.5) -> None:
        self.node = probe.node
        self.ns = ns
        self.lock = threading.Lock()
        self.pose = start
        self.state, self.reason, self.remaining = "IDLE", "", 0.0
        self.drive_s = drive_s
        self.goals: list[tuple[float, float]] = []
        self.seq = 0
        self.dry: list[tuple[float, float]] = []
        self.hold = False  # True: follow but never arrive (the test kills the agent meanwhile)
        self.plan_pub = probe.publisher(Path, f"/{ns}/plan", LATCHED_QOS)
        self.status_pub = probe.publisher(NavigationStatus, f"/{ns}/navigation_status", RELIABLE_QOS)
        self.odom_pub = probe.publisher(Odometry, f"/{ns}/odom", RELIABLE_QOS)  # matches best effort too
        self.node.create_service(PlanPath, f"/{ns}/plan_path", self._on_plan)
        self.node.create_timer(0.05, self._tick)

    def _on_plan(self, request, response):
        g = (request.goal.pose.position.x, request.goal.pose.position.y)
        length = math.hypot(g[0] - self.pose[0], g[1] - self.pose[1])
        response.result, response.length = PlanPath.Response.SUCCESS, length
        if request.dry_run:
            self.dry.append(g)
            return response
        with self.lock:
            self.goals.append(g)
            self.seq += 1
            seq = self.seq
        path = Path()
        path.header.frame_id = "map"
        for x, y in (self.pose, g):
            p = PoseStamped()
            p.pose.position.x, p.pose.position.y = x, y
            path.poses.append(p)
        self.plan_pub.publish(path)
        with self.lock:
            self.state, self.remaining = "FOLLOWING", length
        threading.Timer(self.drive_s, self._arrive, args=(g, seq)).start()
        return response

    def _arrive(self, g, seq=None) -> None:
        with self.lock:
            if self.hold or self.state != "FOLLOWING" or (seq is not None and seq != self.seq):
                return  # a newer path replaced this one (a controller arrives at the path it follows)
            self.pose, self.state, self.remaining = g, "ARRIVED", 0.0

    def _tick(self) -> None:
        with self.lock:
            msg = NavigationStatus()
            msg.state, msg.reason, msg.distance_remaining = STATES[self.state], self.reason, float(self.remaining)
            odom = Odometry()
            odom.pose.pose.position.x, odom.pose.pose.position.y = self.pose
            odom.pose.pose.orientation.w = 1.0
        self.status_pub.publish(msg)
        self.odom_pub.publish(odom)


def _policy(probe, min_price: int = 1 * TOKEN, paused: bool = False, version: int = 1):
    pub = probe.publisher(FleetPolicy, "/fleet/policy", LATCHED_QOS)
    msg = FleetPolicy(version=version, max_speed=1.0, paused=paused, min_task_price=str(min_price), spending_cap="0",
                      source="test")
    msg.header.frame_id = "map"
    pub.publish(msg)
    return pub, msg


def _robot(chain, probe, start_node, tmp_path, cfg, ns, who, start):
    registered_machine(chain, who)
    start_node("wallet", namespace=ns, parameters={"chain_config": str(cfg), "demo_index": who})
    start_node("telemetry", namespace=ns, parameters={
        "batch_period": 1.0, "output_dir": str(tmp_path / f"tlm-{ns}"), "reliable": True, "retry_backoff": 0.2,
        "rescan_period": 1.0, "chain_config": str(cfg)})
    return FakeRobot(probe, ns, start)


AGENT = {"mode": "market", "start_delay": 0.0, "speed": 1.0, "overhead_s": 10.0, "deadline_margin": 2.0,
         "cost_per_m": str(TOKEN // 100), "cost_per_s": "0", "retry_period": 0.3, "follow_timeout": 3.0,
         "proof_poll": 0.3, "record_timeout": 6.0, "chain_poll": 0.3, "controller_timeout": 1.0, "log_period": 30.0}


def _agent(start_node, ns, cfg, **extra):
    return start_node("agent", namespace=ns, parameters={**AGENT, "chain_config": str(cfg), **extra})


def _post(chain, x, y, reward_tokens=5, deadline_s=300, station="A"):
    req = Fleet(chain.client(REQUESTER))
    chain.client().mine(1)  # an idle anvil's latest block may be old: a fresh one tells the chain's time now
    now = chain.now()
    return req.post_task(x, y, 0.0, now + deadline_s, reward_tokens * TOKEN, tolerance=0.5, station=station)


def test_a_posted_task_is_accepted_driven_proven_and_paid(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fake = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    me = chain.address(MACHINE)
    token = Fleet(chain.client(MACHINE)).token
    before = token.call("balanceOf", me)
    chain.client().mine(1, seconds=120)  # the chain's clock runs ahead of ours (as after a governance round's time warp)
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=60)
    # an unreachable in time (deadline too close) and a too-cheap task are not taken; the good one is
    cheap = Fleet(chain.client(REQUESTER))
    tid_late = _post(chain, 40.0, 0.0, reward_tokens=5, deadline_s=15)  # 40 m at 1 m/s + 10 s > 15 s
    tid = _post(chain, 3.0, 4.0, reward_tokens=5)
    log = agent.wait_for_log(f"completed task {tid} (A) at (3.00, 4.00): paid {5 * TOKEN}", timeout=60)
    f = Fleet(chain.client(MACHINE))
    t = f.task(tid)
    assert t.status == TaskStatus.COMPLETED and t.machine == me
    assert token.call("balanceOf", me) == before + 5 * TOKEN
    assert [g for g in fake.goals if g != (0.0, 0.0)] == [(3.0, 4.0)]  # that goal only (and back to its parking spot)
    assert f.task(tid_late).status == TaskStatus.OPEN  # never accepted
    assert f"accepting task {tid_late}" not in log
    assert "arrival record of task" in log and f"the arrival record of task {tid} (A) at (3.00, 4.00) is anchored in batch" in log
    # the cited batch is this machine's, anchored, and the task records it
    assert f.data.call("isAnchored", me, t.batch_id)
    assert cheap.task(tid).batch_id == t.batch_id
    # a second task right after: its arrival is in a batch of its own (a batch proves one task only)
    tid3 = _post(chain, 0.0, 1.0, reward_tokens=3, station="B")
    agent.wait_for_log(f"completed task {tid3} (B) at (0.00, 1.00): paid {3 * TOKEN}", timeout=60)
    t3 = f.task(tid3)
    assert t3.status == TaskStatus.COMPLETED and t3.batch_id != t.batch_id and f.data.call("isAnchored", me, t3.batch_id)
    assert t3.accepted_at > time.time() + 100  # all of it on the chain's clock, two minutes ahead
    assert token.call("balanceOf", me) == before + 8 * TOKEN
    assert agent.process.poll() is None


def test_two_agents_race_for_one_task_one_wins_the_other_moves_on(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fakes, agents = {}, {}
    for ns, who, start in (("robot1", MACHINE, (0.0, 0.0)), ("robot2", MACHINE2, (0.2, 0.0))):
        fakes[ns] = _robot(chain, ros_node, start_node, tmp_path, cfg, ns, who, start)
    for ns in fakes:
        agents[ns] = _agent(start_node, ns, cfg)
    for a in agents.values():
        a.wait_for_log("TaskMarket read up to block", timeout=60)
        a.wait_for_log("machine account", timeout=60)
    # a real race: blocks are mined only when the test says so; the task appears in one block,
    # both agents ask their wallets to accept it, and both acceptances meet in the next block
    c = chain.client()
    c.rpc_local("evm_setAutomine", [False])
    req = Fleet(chain.client(REQUESTER))
    now = max(chain.now(), int(time.time()))
    req.client.transact(req.approve_call(5 * TOKEN) if hasattr(req, "approve_call") else req.token.prepare(
        "approve", req.market.address, 5 * TOKEN), wait=False)
    req.client.transact(req.post_task_call(2.0, 2.0, 0.0, now + 300, 5 * TOKEN, tolerance=0.5, station="A"), wait=False)
    c.mine(1)
    f = Fleet(chain.client(MACHINE))
    tid = f.task_count()
    assert f.task(tid).station == "A"
    for a in agents.values():
        a.wait_for_log(f"accepting task {tid} (A)", timeout=30)
    time.sleep(0.5)  # both wallets' transactions reach the pool
    c.mine(1)
    c.rpc_local("evm_setAutomine", [True])
    winner_addr = wait_for(lambda: f.task(tid).machine, timeout_s=30)
    winner = "robot1" if winner_addr == chain.address(MACHINE) else "robot2"
    loser = "robot2" if winner == "robot1" else "robot1"
    # the loser either lost the race at the contract or saw the acceptance first; it never drives there
    # and it takes the next task at once
    tid2 = _post(chain, -2.0, 1.0, reward_tokens=5, station="B")
    agents[winner].wait_for_log(f"completed task {tid} (A)", timeout=60)
    agents[loser].wait_for_log(f"completed task {tid2} (B)", timeout=60)
    loser_addr = chain.address(MACHINE2 if winner == "robot1" else MACHINE)
    assert f.task(tid).machine == winner_addr and f.task(tid2).machine == loser_addr
    assert (2.0, 2.0) not in fakes[loser].goals
    loser_log = agents[loser].log()
    # lost at the contract (its accept reverted: "lost the race ... TaskNotOpen") or before (the
    # winner's acceptance event came first while its own request was still on its way): it never
    # took the task either way
    assert f"accepted task {tid} " not in loser_log, loser_log[-3000:]
    assert f"resuming task {tid}" not in loser_log and f"completed task {tid} " not in loser_log
    assert f.task(tid).status == TaskStatus.COMPLETED and f.task(tid2).status == TaskStatus.COMPLETED
    assert all(a.process.poll() is None for a in agents.values())


def test_an_agent_restarted_mid_task_resumes_it_from_chain_state(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fake = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    token = Fleet(chain.client(MACHINE)).token
    before = token.call("balanceOf", chain.address(MACHINE))
    fake.hold = True  # it follows the path but does not arrive before the agent is killed
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=60)
    tid = _post(chain, 1.0, -3.0, reward_tokens=7, station="C")
    agent.wait_for_log(f"accepted task {tid} (C)", timeout=30)
    wait_for(lambda: fake.goals, timeout_s=20)
    agent.process.kill()  # kill -9: no goodbye
    agent.process.wait(timeout=10)
    f = Fleet(chain.client(MACHINE))
    assert f.task(tid).status == TaskStatus.ACCEPTED
    fake.hold = False
    with fake.lock:
        fake.state = "IDLE"
    again = _agent(start_node, "robot1", cfg)
    log = again.wait_for_log(f"completed task {tid} (C)", timeout=60)
    assert f"resuming task {tid} (C) at (1.00, -3.00): accepted by this machine and not settled on chain" in log
    assert f"accepting task {tid}" not in log  # not accepted twice
    t = f.task(tid)
    assert t.status == TaskStatus.COMPLETED and t.machine == chain.address(MACHINE)
    assert token.call("balanceOf", chain.address(MACHINE)) == before + 7 * TOKEN  # paid once


def test_a_pause_stops_new_acceptances_and_a_zone_voted_over_the_goal_abandons_the_task(chain, tmp_path, ros_node, start_node):
    from depai.msg import KeepOutZone
    from geometry_msgs.msg import Point32

    cfg = save_config(chain.config, tmp_path / "chain.json")
    pub, msg = _policy(ros_node, paused=True, version=1)
    fake = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    fake.hold = True  # it drives but does not arrive: the vote comes meanwhile
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=60)
    agent.wait_for_log("machine account", timeout=60)
    tid = _post(chain, 4.0, 4.0, reward_tokens=5, station="D")
    f = Fleet(chain.client(MACHINE))
    time.sleep(3.0)  # paused: nothing is evaluated or accepted
    assert f.task(tid).status == TaskStatus.OPEN and "accepting task" not in agent.log() and not fake.dry
    msg.paused, msg.version = False, 2
    pub.publish(msg)
    agent.wait_for_log(f"accepted task {tid} (D)", timeout=30)
    wait_for(lambda: fake.goals, timeout_s=20)
    zone = KeepOutZone(id="dock-d")
    zone.polygon.points = [Point32(x=x, y=y) for x, y in ((3.5, 3.5), (4.5, 3.5), (4.5, 4.5), (3.5, 4.5))]
    msg.keep_out_zones, msg.version = [zone], 3
    pub.publish(msg)
    log = agent.wait_for_log(f"the DAO voted keep-out zone 'dock-d' over the goal of task {tid} (D) at (4.00, 4.00) "
                             "(policy version 3); abandoning it", timeout=20)
    assert f"completed task {tid}" not in log and agent.process.poll() is None
    assert f.task(tid).status == TaskStatus.ACCEPTED  # left to the requester's refund after the deadline


class ChainSwitch:
    """A TCP proxy to anvil that the test can take down (every connection cut, new ones closed at
    once: the RPC endpoint is unreachable for the wallet, telemetry and the agent) and bring back."""

    def __init__(self, port: int) -> None:
        import socket

        self.target = port
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(32)
        self.port = self.srv.getsockname()[1]
        self.socks: list = []
        self.up = True
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self.closed:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        import socket

        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        import socket

        self.up = False
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.socks = []

    def close(self) -> None:
        self.down()
        self.closed = True
        self.srv.close()


def test_chain_down_mid_task_the_robot_finishes_driving_and_is_paid_once_after_recovery(chain, tmp_path, ros_node, start_node):
    switch = ChainSwitch(chain.anvil.port)
    try:
        via = chain.config.model_copy(update={"rpc_url": f"http://127.0.0.1:{switch.port}", "ws_url": None,
                                              "rpc_timeout_s": 2.0})
        cfg = save_config(via, tmp_path / "chain.json")
        _policy(ros_node)
        fake = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
        token = Fleet(chain.client(MACHINE)).token
        before = token.call("balanceOf", chain.address(MACHINE))
        fake.hold = True
        agent = _agent(start_node, "robot1", cfg)
        agent.wait_for_log("TaskMarket read up to block", timeout=60)
        agent.wait_for_log("machine account", timeout=60)
        tid = _post(chain, 2.0, -1.0, reward_tokens=4, station="E")
        agent.wait_for_log(f"accepted task {tid} (E)", timeout=30)
        wait_for(lambda: fake.goals, timeout_s=20)
        switch.down()  # the chain is unreachable from here on
        agent.wait_for_log("chain (TaskMarket reads) failed", timeout=20)
        with fake.lock:
            fake.hold = False
        fake._arrive(fake.goals[-1])  # it finishes driving without the chain
        agent.wait_for_log(f"arrived at task {tid} (E)", timeout=20)
        agent.wait_for_log(f"arrival record of task {tid} published", timeout=20)
        time.sleep(4.0)  # the batch cannot be anchored meanwhile: nothing is completed
        assert f"completed task {tid}" not in agent.log()
        switch.up = True
        log = agent.wait_for_log(f"completed task {tid} (E) at (2.00, -1.00): paid {4 * TOKEN}", timeout=90)
        assert "chain (TaskMarket reads) recovered after" in log
        f = Fleet(chain.client(MACHINE))
        assert f.task(tid).status == TaskStatus.COMPLETED
        assert token.call("balanceOf", chain.address(MACHINE)) == before + 4 * TOKEN  # paid once
        assert log.count("chain (TaskMarket reads) failed") == 1  # logged once per outage
    finally:
        switch.close()


def test_a_deadline_about_to_pass_gives_the_task_up_and_the_requester_is_refunded(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fake = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    fake.hold = True  # stuck on the way (it follows, never arrives)
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=60)
    agent.wait_for_log("machine account", timeout=60)
    # 5 m at 1 m/s + 10 s overhead + 2 s margin fit into 30 s: accepted; stuck, it gives up in time
    tid = _post(chain, 3.0, 4.0, reward_tokens=5, deadline_s=30, station="F")
    agent.wait_for_log(f"accepted task {tid} (F)", timeout=30)
    log = agent.wait_for_log(f"the deadline of task {tid} (F) at (3.00, 4.00) is about to pass", timeout=40)
    assert "giving up (the requester can refund it after the deadline)" in log and f"completed task {tid}" not in log
    req = Fleet(chain.client(REQUESTER))
    t = req.task(tid)
    assert t.status == TaskStatus.ACCEPTED and chain.now() <= t.deadline  # given up before the deadline passed
    balance = req.token.call("balanceOf", req.me)
    chain.client().mine(1, seconds=max(1, t.deadline - chain.now() + 1))
    req.refund(tid)
    assert req.task(tid).status == TaskStatus.REFUNDED and req.token.call("balanceOf", req.me) == balance + 5 * TOKEN
    time.sleep(1.0)
    assert agent.log().count(f"accepting task {tid}") == 1 and agent.process.poll() is None
