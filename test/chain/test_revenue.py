"""Revenue sharing on a real anvil: the protocol fee (set by vote, capped) from every payout into
the treasury, machine payees and co-owner splits, and the RevenueDistributor (pro rata to
balances at a snapshot, transfers after it change nothing, dust accounted for) under attack."""

import pytest
from chainkit import (
    DEPLOYER,
    MACHINE,
    MEMBER_A,
    MEMBER_B,
    MEMBER_C,
    MEMBER_D,
    REQUESTER,
    STRANGER,
    VOTER,
    TOKEN,
    _as_timelock_sender,
    arrive,
    fleet,
    governance_round,
    registered_machine,
)

from depai_nodes.chain import governance as g
from depai_nodes.chain.errors import ContractRevertError
from depai_nodes.chain.models import TaskStatus

REWARD = 10 * TOKEN + 7  # odd on purpose: the fee rounds


def _bal(chain, address):
    return chain.client().contract("FleetToken").call("balanceOf", address)


def _complete(chain, m, reward=REWARD):
    """Post (requester), accept and complete (machine m) one task with a proven arrival; returns the task id."""
    req = fleet(chain, REQUESTER)
    tid = req.post_task(1.0, 2.0, 0.0, chain.now() + 3600, reward, tolerance=0.25, station="dock-A")
    m.accept_task(tid)
    report, proof, _ = arrive(chain, m, tid, 1000, 2000)
    req.complete_task(report, proof, m.sign_report(report))
    assert req.task(tid).status == TaskStatus.COMPLETED
    return tid


def test_protocol_fee_set_by_vote_goes_to_the_treasury(chain):
    m = registered_machine(chain, MACHINE)
    treasury = chain.client().contract("FleetTimelock").address
    policy = chain.client().contract("FleetPolicy")
    assert policy.call("treasury") == treasury and policy.call("protocolFeeBps") == 0
    t0, m0 = _bal(chain, treasury), _bal(chain, m.me)
    _complete(chain, m)
    assert _bal(chain, m.me) == m0 + REWARD and _bal(chain, treasury) == t0  # no fee until a vote sets one

    governance_round(chain, [("FleetPolicy", "setProtocolFee", (250,))], "2.5 % protocol fee")
    assert policy.call("protocolFeeBps") == 250
    t1, m1 = _bal(chain, treasury), _bal(chain, m.me)
    tid = _complete(chain, m)
    fee = REWARD * 250 // 10_000
    assert _bal(chain, treasury) == t1 + fee and _bal(chain, m.me) == m1 + REWARD - fee  # nothing lost to rounding
    paid = [e for e in m.market.events("TaskPaid", chain.client().block_number()) if e["taskId"] == tid]
    assert paid and paid[0]["fee"] == fee and paid[0]["amount"] == REWARD - fee and paid[0]["treasury"] == treasury


def test_protocol_fee_is_capped_and_owner_only(chain):
    policy = chain.client().contract("FleetPolicy")
    tl = chain.client().contract("FleetTimelock").address
    cap = policy.call("MAX_PROTOCOL_FEE_BPS")
    assert cap == 1000
    with pytest.raises(ContractRevertError) as e:  # not even a vote exceeds the constant
        policy.call("setProtocolFee", cap + 1, sender=tl)
    assert e.value.error == "FeeTooHigh" and e.value.error_args == {"bps": cap + 1, "max": cap}
    _as_timelock_sender(chain, "FleetPolicy")("setProtocolFee", cap)
    assert policy.call("protocolFeeBps") == cap
    for who in (DEPLOYER, STRANGER):  # the guardian (deployer) cannot set it either
        with pytest.raises(ContractRevertError) as e:
            chain.client(who).contract("FleetPolicy").transact("setProtocolFee", 0)
        assert e.value.error == "OwnableUnauthorizedAccount"


def test_co_owned_machine_earnings_split_by_shares(chain):
    m = registered_machine(chain, MACHINE)
    owner1, owner2, owner3 = chain.address(VOTER), chain.address(STRANGER), chain.address(MEMBER_D)
    c = chain.client(DEPLOYER)
    splitter = c.deploy("RevenueSplitter", [owner1, owner2, owner3], [5, 3, 2])
    # only the machine names its first payee; a stranger cannot redirect its earnings
    with pytest.raises(ContractRevertError) as e:
        fleet(chain, STRANGER).set_payee(splitter.address, machine=m.me)
    assert e.value.error == "NotPayeeController"
    m.set_payee(splitter.address)
    assert m.payee_of() == splitter.address
    # once set, the machine (or a thief of its key) cannot change it; only the payee could
    with pytest.raises(ContractRevertError) as e:
        m.set_payee(m.me)
    assert e.value.error == "NotPayeeController"
    with pytest.raises(ContractRevertError) as e:
        m.set_payee("0x" + "00" * 20)
    assert e.value.error == "ZeroPayee"
    _as_timelock_sender(chain, "FleetPolicy")("setProtocolFee", 100)
    m0 = _bal(chain, m.me)
    _complete(chain, m)
    _complete(chain, m, reward=3 * TOKEN + 1)
    net = (REWARD - REWARD // 100) + (3 * TOKEN + 1 - (3 * TOKEN + 1) // 100)
    assert _bal(chain, splitter.address) == net and _bal(chain, m.me) == m0
    token = c.contract("FleetToken").address
    before = {a: _bal(chain, a) for a in (owner1, owner2, owner3)}
    sp = chain.client(STRANGER).contract("RevenueSplitter", splitter.address)
    for a, share in ((owner1, 5), (owner2, 3), (owner3, 2)):
        due = sp.call("releasable", token, a)
        assert due == net * share // 10
        sp.transact("release", token, a)  # anyone may trigger it; the money goes to the co-owner
        assert _bal(chain, a) == before[a] + due
    with pytest.raises(ContractRevertError) as e:
        sp.transact("release", token, owner1)
    assert e.value.error == "NothingDue"
    with pytest.raises(ContractRevertError) as e:
        sp.transact("release", token, chain.address(REQUESTER))
    assert e.value.error == "NotPayee"
    assert _bal(chain, splitter.address) == net - sum(net * s // 10 for s in (5, 3, 2)) < 3  # dust only
    for payees, shares, reason in (([owner1, owner1], [1, 1], "duplicate payee"), ([owner1], [0], "zero share"),
                                   ([owner1], [1, 2], "payees and shares differ in length")):
        with pytest.raises(ContractRevertError) as e:
            c.deploy("RevenueSplitter", payees, shares)
        assert reason in e.value.reason


def _holders(chain, snapshot):
    """Every account with a balance at `snapshot` (from the token's Transfer events)."""
    token = chain.client().contract("FleetToken")
    seen = set()
    for ev in token.events("Transfer", chain.config.deploy_block, snapshot):
        seen.add(ev["to"])
    return {a: token.call("getPastBalance", a, snapshot) for a in seen if token.call("getPastBalance", a, snapshot) > 0}


def _distribute(chain, who, amount, snapshot):
    c = chain.client(who) if isinstance(who, int) else who
    dist = c.contract("RevenueDistributor")
    c.contract("FleetToken").transact("approve", dist.address, amount)
    r = dist.transact("createDistribution", c.contract("FleetToken").address, amount, snapshot)
    return next(e for e in (dist.abi.decode_log(l) for l in r.logs) if e and e["event"] == "DistributionCreated")["id"]


def test_distribution_pays_each_holder_its_snapshot_share_once(chain):
    c = chain.client()
    token = c.contract("FleetToken")
    dist = c.contract("RevenueDistributor")
    excluded = set(dist.call("excluded"))
    assert excluded == {dist.address, c.contract("FleetTimelock").address, c.contract("TaskMarket").address}
    # different balances; member A's votes delegated to B (income follows balances, not votes)
    chain.client(MEMBER_A).contract("FleetToken").transact("transfer", chain.address(VOTER), 123_456 * TOKEN + 1)
    chain.client(MEMBER_C).contract("FleetToken").transact("transfer", chain.address(STRANGER), 7 * TOKEN + 3)
    chain.client(MEMBER_A).contract("FleetToken").transact("delegate", chain.address(MEMBER_B))
    snapshot = c.block_number()
    c.mine(1)  # the snapshot block is now in the past (checkpoint lookups refuse the current block)
    at_snapshot = {a: token.call("balanceOf", a) for a in _holders(chain, snapshot)}
    # after the snapshot: A gives everything away, the stranger buys in; neither changes a share
    a_bal = token.call("balanceOf", chain.address(MEMBER_A))
    chain.client(MEMBER_A).contract("FleetToken").transact("transfer", chain.address(STRANGER), a_bal)
    chain.client(MEMBER_D).contract("FleetToken").transact("transfer", chain.address(STRANGER), 500_000 * TOKEN)
    amount = 1_000 * TOKEN + 12_345  # odd: rounding leaves dust
    did = _distribute(chain, DEPLOYER, amount, snapshot)
    d = dist.call("distribution", did)
    eligible = {a: b for a, b in at_snapshot.items() if a not in excluded}
    assert d["eligibleSupply"] == sum(eligible.values()) and d["amount"] == amount and d["snapshot"] == snapshot
    assert token.call("getPastBalance", chain.address(MEMBER_A), snapshot) == a_bal  # checkpointed, not current (0)

    signer_of = {chain.address(i): i for i in (DEPLOYER, MACHINE, 2, REQUESTER, VOTER, STRANGER, MEMBER_A, MEMBER_B, MEMBER_C, MEMBER_D)}
    assert set(eligible) <= set(signer_of), "every holder is a test account"
    paid = 0
    for holder, bal in sorted(eligible.items()):
        expected = bal * amount // d["eligibleSupply"]
        assert dist.call("claimable", did, holder) == expected
        hc = chain.client(signer_of[holder])
        before = _bal(chain, holder)
        hc.contract("RevenueDistributor").transact("claim", did)
        assert _bal(chain, holder) == before + expected, holder
        paid += expected
        with pytest.raises(ContractRevertError) as e:  # double claim
            hc.contract("RevenueDistributor").transact("claim", did)
        assert e.value.error == "AlreadyClaimed"
        assert dist.call("claimable", did, holder) == 0 and dist.call("hasClaimed", did, holder)
    dust = dist.call("unclaimed", did)
    assert paid + dust == amount and 0 <= dust < len(eligible)  # the shares never exceed the amount
    assert dist.call("distribution", did)["claimed"] == paid
    assert dist.call("reserved", token.address) == dust
    assert _bal(chain, dist.address) >= dust
    # the member who sold everything after the snapshot was paid on what it held then
    assert eligible[chain.address(MEMBER_A)] == a_bal


def test_distribution_from_the_treasury_by_vote_and_claims_from_the_cli_api(chain):
    from depai_nodes.dao.core import claim_all, distributions

    treasury = chain.client().contract("FleetTimelock").address
    held = _bal(chain, treasury)
    actions = g.distribution_actions(chain.client(MEMBER_A), 40_000 * TOKEN)
    snapshot = actions[1].args[2]
    governance_round(chain, [(a.contract, a.fn, a.args) for a in actions], "share 40k FLEET of fees")
    assert _bal(chain, treasury) == held - 40_000 * TOKEN
    rows = distributions(chain.client(MEMBER_B), chain.address(MEMBER_B))
    assert len(rows) == 1 and rows[0].snapshot == snapshot and rows[0].funder == treasury
    token = chain.client().contract("FleetToken")
    share = token.call("getPastBalance", chain.address(MEMBER_B), snapshot) * rows[0].amount // rows[0].eligible_supply
    assert rows[0].mine == share > 0
    b0 = _bal(chain, chain.address(MEMBER_B))
    total, ids, _ = claim_all(chain.client(MEMBER_B))
    assert (total, ids) == (share, [1]) and _bal(chain, chain.address(MEMBER_B)) == b0 + share
    assert claim_all(chain.client(MEMBER_B))[:2] == (0, [])  # nothing left: no transaction


def test_distributor_attacks(chain):
    c = chain.client(DEPLOYER)
    dist = c.contract("RevenueDistributor")
    token = c.contract("FleetToken")
    snapshot = c.block_number()
    # a future (or current) snapshot: balances could still move
    token.transact("approve", dist.address, 100 * TOKEN)
    with pytest.raises(ContractRevertError) as e:
        dist.transact("createDistribution", token.address, 100 * TOKEN, c.block_number() + 5)
    assert e.value.error == "FutureSnapshot"
    with pytest.raises(ContractRevertError) as e:
        dist.transact("createDistribution", token.address, 0, snapshot)
    assert e.value.error == "ZeroAmount"
    did = _distribute(chain, c, 100 * TOKEN, snapshot)
    # a distribution that does not exist yet ("a future snapshot") cannot be claimed
    with pytest.raises(ContractRevertError) as e:
        chain.client(MEMBER_A).contract("RevenueDistributor").transact("claim", did + 1)
    assert e.value.error == "UnknownDistribution"
    # claiming someone else's share: a claim pays only the caller's own share, wherever it sends it
    victim = chain.address(MEMBER_A)
    owed = dist.call("claimable", did, victim)
    assert owed > 0
    thief = chain.client(STRANGER).contract("RevenueDistributor")
    s0 = _bal(chain, chain.address(STRANGER))
    mine = dist.call("claimable", did, chain.address(STRANGER))
    thief.transact("claimMany", [did], chain.address(STRANGER))
    assert _bal(chain, chain.address(STRANGER)) == s0 + mine  # its own (snapshot) share, nothing more
    assert dist.call("claimable", did, victim) == owed
    with pytest.raises(ContractRevertError) as e:  # and only once, also through claimMany
        thief.transact("claimMany", [did, did], chain.address(STRANGER))
    assert e.value.error == "AlreadyClaimed"
    # an account that held nothing at the snapshot gets nothing (buying in afterwards does not help)
    fresh = chain.address(19)
    token.transact("transfer", fresh, 1_000 * TOKEN)
    assert dist.call("claimable", did, fresh) == 0
    # the treasury is excluded: no vote can make it claim a share of its own distribution
    with pytest.raises(ContractRevertError) as e:
        dist.call("claim", did, sender=c.contract("FleetTimelock").address)  # as the timelock
    assert e.value.error == "NotEligible"
    # un-excluding it later changes only later distributions
    _as_timelock_sender(chain, "RevenueDistributor")("setExcluded", c.contract("FleetTimelock").address, False)
    with pytest.raises(ContractRevertError) as e:
        dist.call("claim", did, sender=c.contract("FleetTimelock").address)  # as the timelock
    assert e.value.error == "NotEligible"
    # only the owner (the timelock) manages exclusions
    with pytest.raises(ContractRevertError) as e:
        chain.client(STRANGER).contract("RevenueDistributor").transact("setExcluded", chain.address(STRANGER), True)
    assert e.value.error == "OwnableUnauthorizedAccount"
    assert dist.call("owner") == c.contract("FleetTimelock").address


def test_a_splitter_claims_its_revenue_share_into_the_split(chain):
    c = chain.client(DEPLOYER)
    owners = [chain.address(VOTER), chain.address(REQUESTER)]
    splitter = c.deploy("RevenueSplitter", owners, [1, 1])
    token = c.contract("FleetToken")
    token.transact("transfer", splitter.address, 100_000 * TOKEN)  # e.g. a co-owned machine's savings
    snapshot = c.block_number()
    c.mine(1)
    did = _distribute(chain, c, 9_000 * TOKEN + 1, snapshot)
    dist = c.contract("RevenueDistributor")
    share = dist.call("claimable", did, splitter.address)
    assert share == 100_000 * TOKEN * (9_000 * TOKEN + 1) // dist.call("distribution", did)["eligibleSupply"] > 0
    sp = chain.client(STRANGER).contract("RevenueSplitter", splitter.address)
    sp.transact("claimRevenue", dist.address, [did])  # anyone may pull it in; it lands in the split
    assert _bal(chain, splitter.address) == 100_000 * TOKEN + share
    assert sp.call("releasable", token.address, owners[0]) == (100_000 * TOKEN + share) // 2
    with pytest.raises(ContractRevertError) as e:
        sp.transact("claimRevenue", dist.address, [did])
    assert e.value.error == "AlreadyClaimed"


def test_unclaimed_shares_stay_claimable(chain):
    c = chain.client(DEPLOYER)
    dist = c.contract("RevenueDistributor")
    first = _distribute(chain, c, 50 * TOKEN, c.block_number() - 1)
    owed = dist.call("claimable", first, chain.address(MEMBER_B))
    c.mine(200, seconds=400 * 86400)  # long after, and after another distribution
    second = _distribute(chain, c, 70 * TOKEN, c.block_number() - 1)
    assert dist.call("claimable", first, chain.address(MEMBER_B)) == owed > 0
    owed2 = dist.call("claimable", second, chain.address(MEMBER_B))
    b0 = _bal(chain, chain.address(MEMBER_B))
    chain.client(MEMBER_B).contract("RevenueDistributor").transact("claimMany", [second, first], chain.address(MEMBER_B))
    assert _bal(chain, chain.address(MEMBER_B)) == b0 + owed + owed2
