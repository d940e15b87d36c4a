"""The agent in market mode as its own process over real DDS, on a real anvil with the contracts
deployed, with a real wallet (the key) and a real telemetry node (the arrival record anchored,
its proof served): a posted task is accepted, driven to, proven and paid to the machine that did
it; two agents race for one task (one wins, the other moves on); an agent killed mid-task
resumes it from chain state after its restart (nothing accepted twice, paid once).

The planner and controller (and the robot's odometry) are played by the test's probe, as in
test_agent_node.py. Until the wallet serves the market intents (wallet/accept_task,
wallet/complete_task: helper G), the probe serves them too, sending from the machine's demo
account through the bridge (Fleet.accept_task / complete_task) - the same contract calls."""

from __future__ import annotations

import math
import threading
import time

from chainkit import MACHINE, MACHINE2, REQUESTER, registered_machine, wait_for
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path

from depai.msg import FleetPolicy, NavigationStatus
from depai.srv import AcceptTask, CompleteTask, PlanPath
from depai_nodes.chain.config import save_config
from depai_nodes.chain.deploy import TOKEN
from depai_nodes.chain.errors import ChainError, ContractRevertError
from depai_nodes.chain.fleet import Fleet
from depai_nodes.chain.models import TaskStatus, id32
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
        path = Path()
        path.header.frame_id = "map"
        for x, y in (self.pose, g):
            p = PoseStamped()
            p.pose.position.x, p.pose.position.y = x, y
            path.poses.append(p)
        self.plan_pub.publish(path)
        with self.lock:
            self.state, self.remaining = "FOLLOWING", length
        threading.Timer(self.drive_s, self._arrive, args=(g,)).start()
        return response

    def _arrive(self, g) -> None:
        with self.lock:
            if self.hold or self.state != "FOLLOWING":
                return
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


class PlayedWallet:
    """wallet/accept_task and wallet/complete_task of one machine, through the bridge (its demo key)."""

    def __init__(self, probe, ns: str, fleet: Fleet) -> None:
        self.fleet = fleet
        self.accepts: list[str] = []
        self.completes: list[str] = []
        probe.node.create_service(AcceptTask, f"/{ns}/wallet/accept_task", self._accept)
        probe.node.create_service(CompleteTask, f"/{ns}/wallet/complete_task", self._complete)

    @staticmethod
    def _fail(response, e: ChainError):
        if isinstance(e, ContractRevertError):
            response.result, response.error = AcceptTask.Response.REVERTED, e.error or "ContractRevertError"
        else:
            response.result, response.error = AcceptTask.Response.CHAIN_UNAVAILABLE, type(e).__name__
        response.reason = str(e)[:200]
        return response

    def _accept(self, request, response):
        self.accepts.append(request.task_id)
        response.machine = self.fleet.me
        t = self.fleet.task(int(request.task_id))
        if t.status == TaskStatus.ACCEPTED and t.machine == self.fleet.me:
            response.result, response.already_done = AcceptTask.Response.SUCCESS, True
            return response
        try:
            r = self.fleet.accept_task(int(request.task_id))
        except ChainError as e:
            return self._fail(response, e)
        response.result, response.tx_hash, response.block_number = AcceptTask.Response.SUCCESS, r.tx_hash, r.block_number
        return response

    def _complete(self, request, response):
        self.completes.append(request.task_id)
        response.machine = self.fleet.me
        t = self.fleet.task(int(request.task_id))
        if t.status == TaskStatus.COMPLETED and t.machine == self.fleet.me:
            response.result, response.already_done, response.reward = CompleteTask.Response.SUCCESS, True, "0"
            return response
        report = self.fleet.arrival_report(int(request.task_id), id32(request.batch_id), request.x_mm, request.y_mm,
                                           request.yaw_mrad, request.time)
        try:
            r = self.fleet.complete_task(report, [bytes.fromhex(p[2:]) for p in request.proof])
        except ChainError as e:
            return self._fail(response, e)
        response.result, response.tx_hash, response.reward = CompleteTask.Response.SUCCESS, r.tx_hash, str(t.reward)
        return response


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
    fake = FakeRobot(probe, ns, start)
    served = {n for n, _ in probe.node.get_service_names_and_types()}
    wallet = None
    if f"/{ns}/wallet/accept_task" not in served:  # the wallet's market intents have not landed yet
        wallet = PlayedWallet(probe, ns, Fleet(chain.client(who)))
    return fake, wallet


AGENT = {"mode": "market", "start_delay": 0.0, "speed": 1.0, "overhead_s": 10.0, "deadline_margin": 2.0,
         "cost_per_m": str(TOKEN // 100), "cost_per_s": "0", "retry_period": 0.3, "follow_timeout": 3.0,
         "proof_poll": 0.3, "record_timeout": 6.0, "chain_poll": 0.3, "controller_timeout": 1.0, "log_period": 30.0}


def _agent(start_node, ns, cfg, **extra):
    return start_node("agent", namespace=ns, parameters={**AGENT, "chain_config": str(cfg), **extra})


def _post(chain, x, y, reward_tokens=5, deadline_s=300, station="A"):
    req = Fleet(chain.client(REQUESTER))
    now = max(chain.now(), int(time.time()))  # an idle anvil's latest block may be old: its next one is not
    return req.post_task(x, y, 0.0, now + deadline_s, reward_tokens * TOKEN, tolerance=0.5, station=station)


def test_a_posted_task_is_accepted_driven_proven_and_paid(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fake, played = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    me = chain.address(MACHINE)
    token = Fleet(chain.client(MACHINE)).token
    before = token.call("balanceOf", me)
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=30)
    # an unreachable in time (deadline too close) and a too-cheap task are not taken; the good one is
    cheap = Fleet(chain.client(REQUESTER))
    tid_late = _post(chain, 40.0, 0.0, reward_tokens=5, deadline_s=15)  # 40 m at 1 m/s + 10 s > 15 s
    tid = _post(chain, 3.0, 4.0, reward_tokens=5)
    log = agent.wait_for_log(f"completed task {tid} (A) at (3.00, 4.00): paid {5 * TOKEN}", timeout=60)
    f = Fleet(chain.client(MACHINE))
    t = f.task(tid)
    assert t.status == TaskStatus.COMPLETED and t.machine == me
    assert token.call("balanceOf", me) == before + 5 * TOKEN
    assert fake.goals == [(3.0, 4.0)]  # it drove to that goal only
    assert f.task(tid_late).status == TaskStatus.OPEN  # never accepted
    assert f"accepting task {tid_late}" not in log
    assert "arrival record of task" in log and f"the arrival record of task {tid} (A) at (3.00, 4.00) is anchored in batch" in log
    if played is not None:  # (its sends share the account's nonces with the wallet's anchors: a clash is retried)
        assert played.accepts == [str(tid)] and set(played.completes) == {str(tid)}
    # the cited batch is this machine's, anchored, and the task records it
    assert f.data.call("isAnchored", me, t.batch_id)
    assert cheap.task(tid).batch_id == t.batch_id
    assert agent.process.poll() is None


def test_two_agents_race_for_one_task_one_wins_the_other_moves_on(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fakes, wallets, agents = {}, {}, {}
    for ns, who, start in (("robot1", MACHINE, (0.0, 0.0)), ("robot2", MACHINE2, (0.2, 0.0))):
        fakes[ns], wallets[ns] = _robot(chain, ros_node, start_node, tmp_path, cfg, ns, who, start)
    for ns in fakes:
        agents[ns] = _agent(start_node, ns, cfg)
    for a in agents.values():
        a.wait_for_log("TaskMarket read up to block", timeout=30)
        a.wait_for_log("machine account", timeout=30)
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
    assert f"lost the race for task {tid} (A) at (2.00, 2.00): another machine accepted it first (TaskNotOpen); moving on" in loser_log
    assert f"resuming task {tid}" not in loser_log and f"completed task {tid} " not in loser_log
    assert f.task(tid).status == TaskStatus.COMPLETED and f.task(tid2).status == TaskStatus.COMPLETED
    assert all(a.process.poll() is None for a in agents.values())


def test_an_agent_restarted_mid_task_resumes_it_from_chain_state(chain, tmp_path, ros_node, start_node):
    cfg = save_config(chain.config, tmp_path / "chain.json")
    _policy(ros_node)
    fake, played = _robot(chain, ros_node, start_node, tmp_path, cfg, "robot1", MACHINE, (0.0, 0.0))
    token = Fleet(chain.client(MACHINE)).token
    before = token.call("balanceOf", chain.address(MACHINE))
    fake.hold = True  # it follows the path but does not arrive before the agent is killed
    agent = _agent(start_node, "robot1", cfg)
    agent.wait_for_log("TaskMarket read up to block", timeout=30)
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
    if played is not None:
        assert played.accepts == [str(tid)] and set(played.completes) == {str(tid)}
    assert token.call("balanceOf", chain.address(MACHINE)) == before + 7 * TOKEN  # paid once
