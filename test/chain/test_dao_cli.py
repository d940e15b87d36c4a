"""`./depai dao ...` as a member runs it (real subprocesses against the real anvil): a whole
round with --now, a round step by step across processes, delegation, claims, and bad input
answered with one line and an exit code, never a traceback."""

import json
import subprocess
from dataclasses import dataclass

import pytest
from chainkit import DEPLOYER, MEMBER_A, MEMBER_C, PARAMS, STRANGER, TOKEN

from depai_nodes.chain.config import repo_root, save_config
from depai_nodes.chain.fleet import read_policy
from depai_nodes.cli import main

DOCK = [(4.0, 1.0), (6.0, 1.0), (6.0, 3.0), (4.0, 3.0)]


@pytest.fixture()
def cfg(chain, tmp_path):
    return save_config(chain.config, tmp_path / "chain.json")


def dao(cfg, *args, key: str | None = "demo:10"):
    """`./depai dao ARGS` in a subprocess, as a user types it."""
    cmd = [str(repo_root() / "depai"), "dao", *args, "--config", str(cfg)]
    if key:
        cmd += ["--key", key]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_root(), stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def dao_here(capsys):
    """The same command line in this process (depai_nodes.cli.main): the many short commands
    of the claim and bad-input tests without a Python start-up each."""

    def run(cfg, *args, key: str | None = "demo:10") -> Ran:
        argv = ["dao", *args, "--config", str(cfg)] + (["--key", key] if key else [])
        capsys.readouterr()
        rc = main(argv)
        out = capsys.readouterr()
        return Ran(rc, out.out, out.err)

    return run


def test_full_round_from_the_cli_changes_the_fleet_policy(chain, cfg, tmp_path):
    zones = tmp_path / "zones.geojson"
    zones.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "dock", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in DOCK + [DOCK[0]]]]}},
        {"type": "Feature", "properties": {"name": "aisle"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 5], [0, 0]]]}}]}))
    before = read_policy(chain.client())
    r = dao(cfg, "propose", "--max-speed", "0.4", "--zones", str(zones), "--protocol-fee", "300", "--now")
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split()[-1])
    after = read_policy(chain.client())
    assert after.max_speed == 0.4 and after.version == before.version + 4
    assert {z.id: z.polygon for z in after.keep_out_zones} == {"dock": DOCK, "aisle": [(0.0, 0.0), (1.0, 0.0), (1.0, 5.0)]}
    assert chain.client().contract("FleetPolicy").call("protocolFeeBps") == 300
    st = dao(cfg, "status", "--json", key=None)
    rows = json.loads(st.stdout)
    assert [(row["proposal_id"], row["state"]) for row in rows] == [(pid, "Executed")]
    assert rows[0]["votes_for"] == 4_000_000 * TOKEN and rows[0]["quorum"] == 1_500_000 * TOKEN


def test_round_step_by_step_across_processes(chain, cfg, tmp_path, dao_here, monkeypatch):
    """propose, vote, queue and execute each in its own process (status and the odd votes here);
    member C signs from an encrypted keystore, as on a real network."""
    from eth_account import Account

    from depai_nodes.chain.signer import ANVIL_MNEMONIC, create_keystore

    Account.enable_unaudited_hdwallet_features()
    member_c = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{MEMBER_C}")
    keystore = tmp_path / "member-c.json"
    assert create_keystore(keystore, "correct horse battery", private_key=member_c.key.hex()) == chain.address(MEMBER_C)
    monkeypatch.setenv("DEPAI_TEST_PASSPHRASE", "correct horse battery")
    zones = tmp_path / "zones.yaml"
    zones.write_text("keep_out_zones:\n  - id: dock\n    polygon: [[4, 1], [6, 1], [6, 3], [4, 3]]\n")
    c = chain.client()
    r = dao(cfg, "propose", "--max-speed", "0.3", "--zones", str(zones), "--description", "slow, keep out of the dock")
    assert r.returncode == 0, r.stderr
    pid = r.stdout.split()[-1]
    short = pid[:12]
    assert "Pending" in dao_here(cfg, "status", key=None).stdout
    early = dao_here(cfg, "vote", short, "for")
    assert early.returncode == 1 and "it is Pending" in early.stderr
    c.mine(PARAMS.voting_delay_blocks + 1)
    v = dao(cfg, "vote", short, "for")
    assert v.returncode == 0 and "with 1,000,000 votes" in v.stderr, v.stderr
    wrong = dao(cfg, "vote", short, "for", "--keystore", str(keystore), "--passphrase-env", "NO_SUCH_VAR", key=None)
    assert wrong.returncode == 1 and "no passphrase" in wrong.stderr
    v = dao(cfg, "vote", short, "for", "--keystore", str(keystore), "--passphrase-env", "DEPAI_TEST_PASSPHRASE", key=None)
    assert v.returncode == 0 and "with 1,000,000 votes" in v.stderr and chain.address(MEMBER_C) not in v.stdout, v.stderr
    v = dao_here(cfg, "vote", short, "against", "--reason", "I hold nothing", key=f"demo:{STRANGER}")
    assert v.returncode == 0, v.stderr  # allowed, but the stranger's undelegated tokens weigh nothing
    rows = json.loads(dao_here(cfg, "status", short, "--json", key=None).stdout)
    assert rows[0]["state"] == "Active" and rows[0]["votes_for"] == 2_000_000 * TOKEN and rows[0]["votes_against"] == 0
    assert "vote closes in" in rows[0]["when"]
    c.mine(PARAMS.voting_period_blocks)
    q = dao(cfg, "queue", short, key=f"demo:{STRANGER}")  # anyone may queue and execute a passed proposal
    assert q.returncode == 0, q.stderr
    e = dao(cfg, "execute", short, key=f"demo:{STRANGER}")
    assert e.returncode == 1 and "timelock delay is not over" in e.stderr
    assert read_policy(c).max_speed == 1.5
    c.mine(1, seconds=PARAMS.timelock_delay_s + 1)
    e = dao(cfg, "execute", short, key=f"demo:{STRANGER}")
    assert e.returncode == 0, e.stderr
    p = read_policy(c)
    assert p.max_speed == 0.3 and [z.id for z in p.keep_out_zones] == ["dock"]
    assert json.loads(dao_here(cfg, "status", pid, "--json", key=None).stdout)[0]["state"] == "Executed"


def test_delegate_and_claim_from_the_cli(chain, cfg, dao_here):
    dao = dao_here
    c = chain.client(DEPLOYER)
    dist = c.contract("RevenueDistributor")
    token = c.contract("FleetToken")
    stranger = chain.address(STRANGER)
    d = dao(cfg, "delegate", key=f"demo:{STRANGER}")
    assert d.returncode == 0 and token.call("getVotes", stranger) == token.call("balanceOf", stranger) > 0
    snapshot = c.block_number()
    c.mine(1)
    token.transact("approve", dist.address, 500 * TOKEN + 3)
    dist.transact("createDistribution", token.address, 500 * TOKEN + 3, snapshot)
    owed = dist.call("claimable", 1, chain.address(MEMBER_A))
    assert owed > 0
    b0 = token.call("balanceOf", chain.address(MEMBER_A))
    r = dao(cfg, "claim", key=f"demo:{MEMBER_A}")
    assert r.returncode == 0 and int(r.stdout.split()[-1]) == owed, r.stderr
    assert token.call("balanceOf", chain.address(MEMBER_A)) == b0 + owed
    again = dao(cfg, "claim", key=f"demo:{MEMBER_A}")
    assert again.returncode == 0 and "nothing to claim" in again.stderr
    twice = dao(cfg, "claim", "--id", "1", key=f"demo:{MEMBER_A}")  # insisting: the contract refuses
    assert twice.returncode == 1 and "AlreadyClaimed" in twice.stderr
    future = dao(cfg, "claim", "--id", "2", key=f"demo:{MEMBER_A}")
    assert future.returncode == 1 and "UnknownDistribution" in future.stderr
    rev = dao(cfg, "revenue", key=f"demo:{MEMBER_A}")
    assert rev.returncode == 0 and "claimed" in rev.stdout.splitlines()[-1]


def test_bad_input_gets_one_line_and_an_exit_code(chain, cfg, tmp_path, dao_here):
    dao = dao_here
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "x", "geometry": {"type": "Point", "coordinates": [1, 2]}}]}))
    cases = [
        (("propose", "--zones", str(bad)), 2, "not a Polygon"),
        (("propose", "--zones", str(tmp_path / "missing.yaml")), 2, "cannot read zone file"),
        (("propose", "--zone", "z:0,0;1,1"), 2, "at least 3"),
        (("propose", "--protocol-fee", "5000"), 2, "above the contract's cap of 1000"),
        (("propose",), 2, "nothing to propose"),
        (("propose", "--distribute", "1e30"), 2, "the treasury holds"),
        (("propose", "--min-task-price", "abc"), 2, "not an amount"),
        (("propose", "--guardian", "0x1234"), 2, "--guardian"),
        (("vote", "123456789", "for"), 1, "no proposal 123456789"),
        (("queue", "not-an-id"), 1, "not a proposal id"),
    ]
    for args, rc, text in cases:
        r = dao(cfg, *args)
        assert r.returncode == rc and text in r.stderr, (args, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()[-1]) < 400
    r = dao(cfg, "propose", "--max-speed", "0.5", key="demo:99")
    assert r.returncode == 1 and "demo key index" in r.stderr
    r = dao(cfg, "propose", "--max-speed", "0.5", "--keystore", str(tmp_path / "nokey.json"), key=None)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_arrival_tolerance_cap_by_a_cli_round(chain, cfg, dao_here):
    """`depai dao propose --arrival-tolerance M --now`: the DAO's cap on a task's arrival
    tolerance changes, and TaskMarket then refuses a task posted wider than it."""
    from depai_nodes.chain.errors import ContractRevertError
    from depai_nodes.chain.fleet import Fleet
    from chainkit import REQUESTER, fleet

    policy = chain.client().contract("FleetPolicy")
    assert policy.call("maxArrivalToleranceMm") != 500
    r = dao_here(cfg, "propose", "--arrival-tolerance", "0.5", "--now")
    assert r.returncode == 0, r.stderr
    assert policy.call("maxArrivalToleranceMm") == 500
    req: Fleet = fleet(chain, REQUESTER)
    with pytest.raises(ContractRevertError):
        req.post_task(1.0, 2.0, 0.0, chain.now() + 3600, 10 * TOKEN, tolerance=0.8, station="dock-A")
    bad = dao_here(cfg, "propose", "--arrival-tolerance", "-1", "--now")
    assert bad.returncode == 2 and "arrival" in bad.stderr
