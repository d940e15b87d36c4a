"""FleetPolicy under the DAO: a full governance round seen by Python, owner-only setters,
the guardian's one-way e-stop, zone validation and the on-chain point-in-polygon test."""

import threading

import pytest
from chainkit import DEPLOYER, MEMBER_A, MEMBER_B, STRANGER, _as_timelock_sender, fleet, governance_round, wait_for
from eth_utils import keccak

from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.events import EventStream
from depai_nodes.chain.models import id32

SQUARE = ([0, 2000, 2000, 0], [0, 0, 2000, 2000])  # a 2 m square at the origin, in mm


@pytest.mark.parametrize("mode", ["ws", "poll"])
def test_full_governance_round_policy_event_reaches_python(chain, mode):
    c = chain.client(DEPLOYER)
    policy = c.contract("FleetPolicy")
    seen, lock = [], threading.Lock()

    def on_event(ev):
        with lock:
            seen.append(ev)

    stream = EventStream(c, policy, on_event, mode=mode, from_block=c.block_number() + 1, poll_s=0.05).start()
    try:
        assert stream.transport == mode
        before = fleet(chain, DEPLOYER).policy()
        governance_round(chain, [("FleetPolicy", "setMaxSpeed", (500,)),
                                 ("FleetPolicy", "setKeepOutZone", (id32("dock"), *SQUARE)),
                                 ("FleetPolicy", "setPaused", (True,))], "slow down, keep out of the dock, pause")
        wait_for(lambda: sum(1 for e in seen if e["event"] == "PolicyChanged") >= 3)
    finally:
        stream.stop()
    names = [e["event"] for e in seen]
    assert names == ["MaxSpeedSet", "PolicyChanged", "KeepOutZoneSet", "PolicyChanged", "PausedSet", "PolicyChanged"]
    versions = [e["version"] for e in seen if e["event"] == "PolicyChanged"]
    assert versions == [before.version + 1, before.version + 2, before.version + 3]
    assert seen[0]["maxSpeedMmPerS"] == 500
    assert seen[4]["by"] == c.contract("FleetTimelock").address
    after = fleet(chain, DEPLOYER).policy()
    assert after.max_speed == 0.5 and after.paused is True
    assert [z.id for z in after.keep_out_zones] == ["dock"]
    assert after.keep_out_zones[0].polygon == [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]


def test_defeated_proposal_cannot_be_queued(chain):
    c = chain.client(MEMBER_A)
    gov = c.contract("FleetGovernor")
    policy = c.contract("FleetPolicy")
    data = bytes.fromhex(policy.abi.encode_call("setMaxSpeed", (100,))[2:])
    r = gov.transact("propose", [policy.address], [0], [data], "too slow")
    pid = next(e for e in (gov.abi.decode_log(l) for l in r.logs) if e and e["event"] == "ProposalCreated")["proposalId"]
    c.mine(2)
    gov.transact("castVote", pid, 0)  # against
    chain.client(MEMBER_B).contract("FleetGovernor").transact("castVote", pid, 1)  # for: a tie is no majority
    c.mine(6)
    assert gov.call("state", pid) == 3  # Defeated
    with pytest.raises(ContractRevertError) as e:
        gov.transact("queue", [policy.address], [0], [data], keccak(text="too slow"))
    assert e.value.error == "GovernorUnexpectedProposalState"


def test_execute_before_timelock_delay_reverts(chain):
    c = chain.client(MEMBER_A)
    gov = c.contract("FleetGovernor")
    policy = c.contract("FleetPolicy")
    data = bytes.fromhex(policy.abi.encode_call("setMaxSpeed", (700,))[2:])
    r = gov.transact("propose", [policy.address], [0], [data], "d")
    pid = next(e for e in (gov.abi.decode_log(l) for l in r.logs) if e and e["event"] == "ProposalCreated")["proposalId"]
    c.mine(2)
    gov.transact("castVote", pid, 1)
    chain.client(MEMBER_B).contract("FleetGovernor").transact("castVote", pid, 1)
    c.mine(6)
    gov.transact("queue", [policy.address], [0], [data], keccak(text="d"))
    with pytest.raises(ContractRevertError) as e:
        gov.transact("execute", [policy.address], [0], [data], keccak(text="d"))
    assert e.value.error == "TimelockUnexpectedOperationState"


def test_only_the_timelock_sets_policy(chain):
    policy = chain.client(DEPLOYER).contract("FleetPolicy")  # the deployer gave ownership away
    for fn, args in [("setMaxSpeed", (1,)), ("setMinTaskPrice", (1,)), ("setSpendingCap", (1,)),
                     ("setKeepOutZone", (id32("z"), *SQUARE)), ("removeKeepOutZone", (id32("z"),)), ("setGuardian", (policy.address,))]:
        with pytest.raises(ContractRevertError) as e:
            policy.transact(fn, *args)
        assert e.value.error == "OwnableUnauthorizedAccount", fn


def test_guardian_pauses_at_once_but_cannot_unpause(chain):
    guardian = chain.client(DEPLOYER).contract("FleetPolicy")  # deploy made the deployer guardian
    guardian.transact("setPaused", True)
    assert guardian.call("paused") is True
    with pytest.raises(ContractRevertError) as e:
        guardian.transact("setPaused", False)
    assert e.value.error == "NotGuardianOrOwner"
    with pytest.raises(ContractRevertError) as e:
        chain.client(STRANGER).contract("FleetPolicy").transact("setPaused", True)
    assert e.value.error == "NotGuardianOrOwner"
    governance_round(chain, [("FleetPolicy", "setPaused", (False,))], "resume")
    assert guardian.call("paused") is False


def _as_timelock(chain):
    """(FleetPolicy, send-as-timelock) to exercise the setters without a full vote each time."""
    return chain.client(DEPLOYER).contract("FleetPolicy"), _as_timelock_sender(chain, "FleetPolicy")


def test_zone_validation_and_point_in_polygon(chain):
    policy, send = _as_timelock(chain)
    tl = chain.client(DEPLOYER).contract("FleetTimelock").address  # reverts checked by eth_call as the owner
    for args, reason in [((id32("a"), [0, 1], [0, 1]), "fewer than 3 vertices"),
                         ((id32("a"), [0, 1, 2], [0, 1]), "xs and ys differ in length"),
                         ((b"\0" * 32, *SQUARE), "empty id"),
                         ((id32("a"), list(range(65)), list(range(65))), "too many vertices")]:
        with pytest.raises(ContractRevertError) as e:
            policy.call("setKeepOutZone", *args, sender=tl)
        assert e.value.error == "InvalidZone" and e.value.error_args["reason"] == reason
    with pytest.raises(ContractRevertError) as e:
        policy.call("setMaxSpeed", 0, sender=tl)
    assert e.value.error == "InvalidSpeed"
    with pytest.raises(ContractRevertError) as e:
        policy.call("removeKeepOutZone", id32("nope"), sender=tl)
    assert e.value.error == "ZoneNotFound"

    # an L-shaped (concave) zone in mm
    send("setKeepOutZone", id32("L"), [0, 4000, 4000, 1000, 1000, 0], [0, 0, 1000, 1000, 4000, 4000])
    send("setKeepOutZone", id32("sq"), [10000, 12000, 12000, 10000], [10000, 10000, 12000, 12000])
    cases = {(500, 500): "L", (3500, 500): "L", (500, 3500): "L", (3000, 3000): None, (-1, 500): None,
             (11000, 11000): "sq", (12001, 11000): None}
    for (x, y), zone in cases.items():
        inside, zid = policy.call("isInKeepOut", x, y).values()
        assert inside is (zone is not None), (x, y)
        if zone:
            assert zid == id32(zone)
    send("removeKeepOutZone", id32("L"))
    assert policy.call("isInKeepOut", 500, 500)["inside"] is False
    assert policy.call("zoneIds") == [id32("sq")]


def test_too_many_zones(chain):
    policy, send = _as_timelock(chain)
    for i in range(32):
        send("setKeepOutZone", id32(f"z{i}"), *SQUARE)
    tl = chain.client().contract("FleetTimelock").address
    with pytest.raises(ContractRevertError) as e:
        policy.call("setKeepOutZone", id32("z32"), *SQUARE, sender=tl)
    assert e.value.error == "TooManyZones"
    send("setKeepOutZone", id32("z0"), *SQUARE)  # replacing an existing one is fine
    assert len(policy.call("zoneIds")) == 32


def test_token_mint_and_voting_power(chain):
    deployer = chain.client(DEPLOYER).contract("FleetToken")
    stranger = chain.client(STRANGER).contract("FleetToken")
    supply = deployer.call("totalSupply")
    assert deployer.call("owner") == chain.client().contract("FleetTimelock").address  # only a vote mints
    _as_timelock_sender(chain, "FleetToken")("mint", chain.address(STRANGER), 7)
    assert deployer.call("totalSupply") == supply + 7
    for who in (deployer, stranger):
        with pytest.raises(ContractRevertError) as e:
            who.transact("mint", chain.address(STRANGER), 1)
        assert e.value.error == "OwnableUnauthorizedAccount"
    # tokens only vote once delegated (ERC20Votes); the deployer's float never was
    assert stranger.call("getVotes", chain.address(STRANGER)) == 0
    bal = stranger.call("balanceOf", chain.address(STRANGER))
    stranger.transact("delegate", chain.address(STRANGER))
    assert stranger.call("getVotes", chain.address(STRANGER)) == bal
    assert deployer.call("getVotes", chain.address(DEPLOYER)) == 0 < deployer.call("balanceOf", chain.address(DEPLOYER))
    member = chain.client(MEMBER_A).contract("FleetToken")
    assert member.call("getVotes", chain.address(MEMBER_A)) == member.call("balanceOf", chain.address(MEMBER_A)) > 0
