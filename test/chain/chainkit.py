"""Helpers shared by the chain tests (imported as a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from depai_nodes.chain.anvil import Anvil
from depai_nodes.chain.client import ChainClient, _revert_data
from depai_nodes.chain.errors import RpcResponseError
from depai_nodes.chain.config import LOCAL_CHAIN_ID, ChainConfig
from depai_nodes.chain.deploy import DEMO_MEMBERS, TOKEN, DeployParams
from depai_nodes.chain.merkle import MerkleTree
from depai_nodes.chain.signer import demo_signer

# Roles of the anvil demo accounts in these tests
DEPLOYER, MACHINE, MACHINE2, REQUESTER, VOTER, STRANGER = 0, 1, 2, 3, 4, 5
# the DAO's members (deploy: 1M FLEET each of 10M, self-delegated; quorum 15 %: two are needed)
MEMBER_A, MEMBER_B, MEMBER_C, MEMBER_D = DEMO_MEMBERS

PARAMS = DeployParams(voting_delay_blocks=1, voting_period_blocks=5, quorum_percent=15, timelock_delay_s=60,
                      max_speed=1.5, min_task_price=1 * TOKEN, spending_cap=0, min_stake=100 * TOKEN, slash_bps=5000)


@dataclass
class Chain:
    anvil: Anvil
    config: ChainConfig

    def client(self, who: int = DEPLOYER, **overrides) -> ChainClient:
        cfg = self.config.model_copy(update=overrides) if overrides else self.config
        return ChainClient(cfg, demo_signer(who, LOCAL_CHAIN_ID))

    def address(self, who: int) -> str:
        return demo_signer(who, LOCAL_CHAIN_ID).address

    def signer(self, who: int):
        return demo_signer(who, LOCAL_CHAIN_ID)

    def now(self) -> int:
        return int(self.client().get_block("latest")["timestamp"], 16)



def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.01):
    """Poll until predicate() is truthy (returns it) or fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def fleet(chain: Chain, who: int):
    from depai_nodes.chain.fleet import Fleet

    return Fleet(chain.client(who))


def registered_machine(chain: Chain, who: int, stake: int = 100 * TOKEN):
    """A machine with its DID attribute and stake in the market."""
    f = fleet(chain, who)
    f.register_did()
    f.register_machine(stake)
    return f


def governance_round(chain: Chain, calls: list[tuple[str, str, tuple]], description: str) -> dict:
    """Propose -> vote -> queue -> execute through the real Governor + Timelock, asserting each
    state on the way (member A proposes; members A and B, together above the quorum, vote for)."""
    from depai_nodes.chain import governance as g

    c = chain.client(MEMBER_A)
    p = g.propose(c, [g.Action(*call) for call in calls], description)
    assert g.state(c, p) == "Pending"
    c.mine(PARAMS.voting_delay_blocks + 1)
    assert g.state(c, p) == "Active"
    r_vote = g.vote(c, p, 1)
    g.vote(chain.client(MEMBER_B), p, 1)
    c.mine(PARAMS.voting_period_blocks)
    assert g.state(c, p) == "Succeeded"
    r_queue = g.queue(c, p)
    assert g.state(c, p) == "Queued"
    c.mine(1, seconds=PARAMS.timelock_delay_s + 1)
    r_exec = g.execute(c, p)
    assert g.state(c, p) == "Executed"
    return {"proposal_id": p.proposal_id, "receipts": [r_vote, r_queue, r_exec], "proposal": p}


def _as_timelock_sender(chain: Chain, contract: str):
    """send(fn, *args) as the timelock (anvil impersonation): exercises owner-only paths
    without a full vote (test_governance_policy runs the real vote)."""
    c = chain.client(DEPLOYER)
    tl = c.contract("FleetTimelock").address
    c.rpc_local("anvil_impersonateAccount", [tl])
    c.rpc_local("anvil_setBalance", [tl, hex(10**20)])
    target = c.contract(contract)

    def send(fn, *args):
        tx = {"from": tl, "to": target.address, "data": target.abi.encode_call(fn, args)}
        try:
            tx["gas"] = hex(int(int(c.rpc.call("eth_estimateGas", [tx]), 16) * 1.3))
        except RpcResponseError as e:  # a revert: decoded like the bridge does
            raise c._revert(target, fn, _revert_data(e), str(e)) from None
        r = c.wait_receipt(c.rpc.call("eth_sendTransaction", [tx]))
        if r.status != 1:
            raise c._mined_revert(target.prepare(fn, *args), r)
        return r

    return send


def arrive(chain: Chain, m, task_id: int, x_mm: int, y_mm: int, yaw_mrad: int = 0, *, time: int | None = None,
           extra: list | None = None, start: int | None = None, end: int | None = None, machine: str | None = None,
           anchor_with=None):
    """What a robot's telemetry + wallet do on arrival: an arrival record (the typed leaf) in a
    batch with some odometry around it, the batch anchored by the machine. Returns
    (report, proof, batch): everything completeTask needs but the signature."""
    from depai_nodes.chain.intents import content_batch_id

    t = chain.now() if time is None else time
    report = m.arrival_report(task_id, bytes(32), x_mm, y_mm, yaw_mrad, t, machine=machine)
    msgs = [b"odom before", report.leaf_preimage(), *(r.leaf_preimage() for r in (extra or [])), b"odom after"]
    start = t - 5 if start is None else start
    end = t + 1 if end is None else end
    root = MerkleTree(msgs).root
    bid = content_batch_id(root, len(msgs), start, end)
    batch, tree = (anchor_with or m).make_batch(msgs, bid, start, end, machine=m.me)
    (anchor_with or m).anchor(batch, m.sign_batch(batch))
    report = report.model_copy(update={"batch_id": batch.batch_id})
    return report, tree.proof(1), batch


def proof_of(tree_msgs: list[bytes], index: int) -> list[bytes]:
    return MerkleTree(tree_msgs).proof(index)
