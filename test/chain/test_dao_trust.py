"""A DAO that is not one key: after deployment the deployer holds no power but the guardian's
revocable pause; no single member passes a proposal; the guardian pauses, never unpauses or
changes a rule, and a vote revokes it."""

import pytest
from chainkit import (
    DEPLOYER,
    MEMBER_A,
    MEMBER_B,
    MEMBER_C,
    PARAMS,
    STRANGER,
    TOKEN,
    _as_timelock_sender,
    governance_round,
)

from depai_nodes.chain import governance as g
from depai_nodes.chain.deploy import DEMO_MEMBERS, deploy_all
from depai_nodes.chain.errors import ContractRevertError, DeployError
from depai_nodes.chain.models import id32

ZERO = "0x" + "00" * 20


def test_after_deploy_the_timelock_owns_everything_and_the_deployer_nothing(chain):
    c = chain.client(DEPLOYER)
    me = chain.address(DEPLOYER)
    tl = c.contract("FleetTimelock")
    for name in ("FleetToken", "FleetPolicy", "RevenueDistributor"):
        assert c.contract(name).call("owner") == tl.address, name
    for role in ("DEFAULT_ADMIN_ROLE", "PROPOSER_ROLE", "CANCELLER_ROLE"):
        assert tl.call("hasRole", tl.call(role), me) is False, role
    gov = c.contract("FleetGovernor")
    assert tl.call("hasRole", tl.call("PROPOSER_ROLE"), gov.address)
    token = c.contract("FleetToken")
    supply = token.call("totalSupply")
    quorum = gov.call("quorum", c.block_number() - 1)
    assert quorum == supply * PARAMS.quorum_percent // 100
    # the deployer's float never votes; every member holds less than the quorum
    assert token.call("getVotes", me) == 0
    members = [chain.address(i) for i in DEMO_MEMBERS]
    assert all(0 < token.call("getVotes", m) < quorum for m in members)
    assert token.call("balanceOf", tl.address) > 0  # the treasury: does not vote (never delegated)
    assert token.call("getVotes", tl.address) == 0
    # the deployer can neither mint, change a rule, touch the timelock nor renounce for the DAO
    with pytest.raises(ContractRevertError) as e:
        token.transact("mint", me, 1)
    assert e.value.error == "OwnableUnauthorizedAccount"
    with pytest.raises(ContractRevertError) as e:
        tl.transact("schedule", token.address, 0, b"", b"\0" * 32, b"\0" * 32, 60)
    assert e.value.error == "AccessControlUnauthorizedAccount"
    with pytest.raises(ContractRevertError) as e:  # ... nor propose: its votes are below the threshold
        gov.transact("propose", [token.address], [0], [b""], "deployer alone")
    assert e.value.error == "GovernorInsufficientProposerVotes"
    # not even a vote can leave a governed contract without an owner
    for name in ("FleetToken", "FleetPolicy", "RevenueDistributor"):
        with pytest.raises(ContractRevertError) as e:
            c.contract(name).call("renounceOwnership", sender=tl.address)
        assert e.value.error == "OwnershipNotRenounceable", name


def _round_with(chain, voters, description, calls=(("FleetPolicy", "setMaxSpeed", (300,)),)):
    c = chain.client(voters[0])
    p = g.propose(c, [g.Action(*x) for x in calls], description)
    c.mine(PARAMS.voting_delay_blocks + 1)
    for v in voters:
        g.vote(chain.client(v) if v != voters[0] else c, p, 1)
    c.mine(PARAMS.voting_period_blocks)
    return c, p


def test_no_single_member_passes_a_proposal(chain):
    policy = chain.client().contract("FleetPolicy")
    speed = policy.call("maxSpeedMmPerS")
    for member in DEMO_MEMBERS:
        c, p = _round_with(chain, [member], f"member {member} alone")
        assert g.state(c, p) == "Defeated", member  # quorum not reached
        with pytest.raises(ContractRevertError) as e:
            g.queue(c, p)
        assert e.value.error == "GovernorUnexpectedProposalState"
    assert policy.call("maxSpeedMmPerS") == speed
    # two members together pass it
    c, p = _round_with(chain, [MEMBER_A, MEMBER_C], "two members")
    assert g.state(c, p) == "Succeeded"


def test_deploy_refuses_a_holder_that_reaches_the_quorum(chain):
    c = chain.client(DEPLOYER)
    big = PARAMS.model_copy(update={"demo_members": 0, "members": {chain.address(STRANGER): 2_000_000 * TOKEN,
                                                                   chain.address(MEMBER_B): 1_000_000 * TOKEN}})
    with pytest.raises(DeployError) as e:
        deploy_all(c, big)
    assert "could pass proposals alone" in str(e.value)
    fat_float = PARAMS.model_copy(update={"deployer_float": 2_000_000 * TOKEN})
    with pytest.raises(DeployError) as e:
        deploy_all(chain.client(DEPLOYER), fat_float)
    assert "could pass proposals alone" in str(e.value)
    nobody = PARAMS.model_copy(update={"demo_members": 0})
    with pytest.raises(DeployError) as e:
        deploy_all(chain.client(DEPLOYER), nobody)
    assert "no DAO members" in str(e.value)


def test_guardian_pauses_only_and_a_vote_revokes_it(chain):
    c = chain.client(DEPLOYER)
    guardian = c.contract("FleetPolicy")
    assert guardian.call("guardian") == chain.address(DEPLOYER)
    guardian.transact("setPaused", True)
    assert guardian.call("paused") is True
    with pytest.raises(ContractRevertError) as e:
        guardian.transact("setPaused", False)
    assert e.value.error == "NotGuardianOrOwner"
    # no rule, no successor, no fee: pause is all it can do
    for fn, args in [("setMaxSpeed", (100,)), ("setKeepOutZone", (id32("g"), [0, 1, 1], [0, 0, 1])),
                     ("setGuardian", (chain.address(STRANGER),)), ("setProtocolFee", (10,)), ("setMinTaskPrice", (0,))]:
        with pytest.raises(ContractRevertError) as e:
            guardian.transact(fn, *args)
        assert e.value.error == "OwnableUnauthorizedAccount", fn
    # the DAO unpauses and revokes the guardian in one proposal
    governance_round(chain, [("FleetPolicy", "setPaused", (False,)), ("FleetPolicy", "setGuardian", (ZERO,))],
                     "resume and revoke the guardian")
    assert guardian.call("paused") is False and guardian.call("guardian") == ZERO
    with pytest.raises(ContractRevertError) as e:
        guardian.transact("setPaused", True)
    assert e.value.error == "NotGuardianOrOwner"
    with pytest.raises(ContractRevertError) as e:
        guardian.transact("renounceGuardian")
    assert e.value.error == "NotGuardian"


def test_guardian_may_step_down_and_a_stranger_may_not(chain):
    policy = chain.client(DEPLOYER).contract("FleetPolicy")
    with pytest.raises(ContractRevertError) as e:
        chain.client(STRANGER).contract("FleetPolicy").transact("renounceGuardian")
    assert e.value.error == "NotGuardian"
    v = policy.call("version")
    policy.transact("renounceGuardian")
    assert policy.call("guardian") == ZERO and policy.call("version") == v + 1
    # a vote names a new one
    _as_timelock_sender(chain, "FleetPolicy")("setGuardian", chain.address(STRANGER))
    chain.client(STRANGER).contract("FleetPolicy").transact("setPaused", True)
    assert policy.call("paused") is True
