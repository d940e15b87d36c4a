"""`depai dao ...`: the fleet DAO from the command line, on the local chain and real networks.

    depai dao propose   a proposal (speed limit, keep-out zones from YAML/GeoJSON, pause/unpause,
                        minimum task price, spending cap, protocol fee, guardian, a revenue
                        distribution from the treasury); --now: the whole round at once (local)
    depai dao vote      for / against / abstain
    depai dao queue     a passed proposal into the timelock
    depai dao execute   a queued proposal, once the timelock delay has passed
    depai dao status    every proposal: state, votes, quorum, blocks or seconds left
    depai dao delegate  your voting power (to yourself by default)
    depai dao revenue   the treasury, the distributions and your share of each
    depai dao claim     your revenue shares

The key: `--key demo:N` (an anvil demo key, local chain only), `--keystore PATH` (encrypted;
passphrase from $DEPAI_KEYSTORE_PASSPHRASE or `--passphrase-env VAR`, else asked for on a
terminal), or else the chain config's `key`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _say(msg: str) -> None:
    print(f"[depai dao] {msg}", file=sys.stderr, flush=True)


def _config(args):
    from depai_nodes.chain.config import default_config_path, load_config

    return load_config(Path(args.config) if args.config else default_config_path())


def _signer(args, cfg):
    from depai_nodes.chain.errors import SignerError
    from depai_nodes.chain.signer import Signer, demo_signer

    if args.key and args.keystore:
        raise SignerError("give --key or --keystore, not both")
    if args.key:
        kind, _, index = args.key.partition(":")
        if kind != "demo" or not index.isdigit():
            raise SignerError(f"--key must be demo:N (an anvil demo key, local chain only), got {args.key!r}")
        return demo_signer(int(index), cfg.chain_id)
    if args.keystore:
        if not Path(args.keystore).expanduser().is_file():
            raise SignerError(f"keystore {args.keystore} does not exist")
        env = args.passphrase_env or cfg.key.passphrase_env or "DEPAI_KEYSTORE_PASSPHRASE"
        passphrase = os.environ.get(env)
        if passphrase is None:
            if not sys.stdin.isatty():
                raise SignerError(f"keystore {args.keystore}: no passphrase (set ${env}, or run on a terminal to be asked)")
            passphrase = getpass.getpass(f"passphrase for {args.keystore}: ")
        return Signer.from_keystore(args.keystore, passphrase)
    return Signer.from_source(cfg.key, cfg.chain_id)


def _client(args, *, signing: bool):
    from depai_nodes.chain.client import ChainClient

    cfg = _config(args)
    return ChainClient(cfg, _signer(args, cfg) if signing else None)


def _run(fn):
    """Typed failures become one line and exit 1 (bad input: 2), never a traceback."""

    def wrapped(args) -> int:
        from depai_nodes.chain.errors import ChainError
        from depai_nodes.dao.core import DaoError

        try:
            return fn(args) or EXIT_OK
        except DaoError as e:
            _say(str(e))
            return EXIT_USAGE
        except ChainError as e:
            _say(f"failed: {e}")
            return EXIT_FAIL
        except KeyboardInterrupt:
            _say("interrupted")
            return EXIT_FAIL

    return wrapped


# ---------------------------------------------------------------------------- commands


def _expect(client, p, state: str, what: str) -> None:
    """Refuse, with where the proposal stands, what the Governor would refuse anyway."""
    from depai_nodes.chain.errors import ChainError
    from depai_nodes.dao import core

    st = core.proposal_status(client, p)
    if st.state != state:
        raise ChainError(f"cannot {what} {st.short_id}: it is {st.state} ({st.when})")


@_run
def cmd_propose(args) -> int:
    from depai_nodes.chain import governance as g
    from depai_nodes.dao import core

    zones = {}
    for path in args.zones or []:
        for zid, poly in core.load_zones(path).items():
            if zid in zones:
                raise core.DaoError(f"zone {zid!r} given twice")
            zones[zid] = poly
    for text in args.zone or []:
        zid, poly = core.parse_zone(text)
        if zid in zones:
            raise core.DaoError(f"zone {zid!r} given twice")
        zones[zid] = poly
    try:
        change = core.ProposalChange(
            max_speed=args.max_speed, paused=args.paused,
            min_task_price=core.parse_amount(args.min_task_price) if args.min_task_price is not None else None,
            spending_cap=core.parse_amount(args.spending_cap) if args.spending_cap is not None else None,
            protocol_fee_bps=args.protocol_fee, max_arrival_tolerance=args.arrival_tolerance, guardian=args.guardian, zones=zones, remove_zones=args.remove_zone or [],
            distribute=core.parse_amount(args.distribute) if args.distribute is not None else None,
            snapshot_block=args.snapshot)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        if isinstance(e, core.DaoError):
            raise
        raise core.DaoError("; ".join(f"--{'-'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())) from None
    client = _client(args, signing=True)
    actions = core.build_actions(client, change)
    description = args.description or core.describe_actions(client, actions)
    dup = core.existing_proposal(client, actions, description)
    if dup:
        raise core.DaoError(f"the same proposal exists already: {dup[0]} ({dup[1]}); vote on, queue or execute that one, "
                            "or give another --description")
    if args.now:
        voters = None
        if args.voters:
            from depai_nodes.chain.client import ChainClient
            from depai_nodes.chain.signer import demo_signer

            try:
                indices = [int(v) for v in args.voters.split(",") if v.strip()]
            except ValueError:
                raise core.DaoError(f"--voters takes demo key indices, e.g. 10,11; got {args.voters!r}") from None
            voters = [ChainClient(client.config, demo_signer(i, client.config.chain_id)) for i in indices]
        p = g.local_round(client, actions, description, voters=voters, progress=_say)
        print(p.proposal_id)
        _say(f"executed proposal {p.proposal_id}")
        return EXIT_OK
    p = g.propose(client, actions, description)
    print(p.proposal_id)
    st = core.proposal_status(client, p)
    _say(f"proposed on {client.config.name} in block {p.block_number} ({p.tx_hash}): {st.state}, {st.when}; "
         f"then: depai dao vote {st.short_id} for")
    return EXIT_OK


@_run
def cmd_vote(args) -> int:
    from depai_nodes.chain import governance as g
    from depai_nodes.dao import core

    client = _client(args, signing=True)
    p = g.find_proposal(client, args.proposal)
    _expect(client, p, "Active", "vote")
    gov = client.contract("FleetGovernor")
    weight = gov.call("getVotes", client.signer.address, p.vote_start) if p.vote_start < client.block_number() else 0
    support = core.SUPPORT[args.support]
    if args.reason:
        r = gov.transact("castVoteWithReason", p.proposal_id, support, args.reason)
    else:
        r = g.vote(client, p, support)
    st = core.proposal_status(client, p)
    _say(f"voted {args.support} on {st.short_id} with {core.format_amount(weight)} votes in block {r.block_number} "
         f"({r.tx_hash}); now for {core.format_amount(st.votes_for)} / against {core.format_amount(st.votes_against)} / "
         f"abstain {core.format_amount(st.votes_abstain)}, quorum {core.format_amount(st.quorum)}; {st.when}")
    return EXIT_OK


@_run
def cmd_queue(args) -> int:
    from depai_nodes.chain import governance as g
    from depai_nodes.dao import core

    client = _client(args, signing=True)
    p = g.find_proposal(client, args.proposal)
    _expect(client, p, "Succeeded", "queue")
    r = g.queue(client, p)
    st = core.proposal_status(client, p)
    _say(f"queued {st.short_id} in block {r.block_number} ({r.tx_hash}); {st.when}")
    return EXIT_OK


@_run
def cmd_execute(args) -> int:
    from depai_nodes.chain.errors import ChainError, ContractRevertError
    from depai_nodes.chain import governance as g
    from depai_nodes.dao import core

    client = _client(args, signing=True)
    p = g.find_proposal(client, args.proposal)
    _expect(client, p, "Queued", "execute")
    try:
        r = g.execute(client, p)
    except ContractRevertError as e:
        if e.error != "TimelockUnexpectedOperationState":
            raise
        eta = client.contract("FleetGovernor").call("proposalEta", p.proposal_id)
        raise ChainError(f"the timelock delay is not over: {str(p.proposal_id)[:12]} is executable from unix time {eta}") from None
    st = core.proposal_status(client, p)
    _say(f"executed {st.short_id} in block {r.block_number} ({r.tx_hash}): {st.state}")
    return EXIT_OK


@_run
def cmd_status(args) -> int:
    from depai_nodes.chain import governance as g
    from depai_nodes.dao import core

    client = _client(args, signing=False)
    if args.proposal:
        rows = [core.proposal_status(client, g.find_proposal(client, args.proposal))]
    else:
        rows = core.all_status(client)
    if args.json:
        print(core.to_json(rows))
        return EXIT_OK
    gov = client.contract("FleetGovernor")
    head = client.block_number()
    print(f"DAO {gov.address} on {client.config.name} (chain {client.config.chain_id}), block {head}: "
          f"voting delay {gov.call('votingDelay')} block(s), period {gov.call('votingPeriod')} block(s), "
          f"threshold {core.format_amount(gov.call('proposalThreshold'))}, quorum {core.format_amount(gov.call('quorum', head - 1))} FLEET, "
          f"timelock {client.contract('FleetTimelock').call('getMinDelay')} s")
    if not rows:
        print("no proposals yet")
        return EXIT_OK
    print(f"{'proposal':<13} {'state':<10} {'for':>14} {'against':>14} {'abstain':>12} {'quorum':>12}  {'when':<40} description")
    for r in rows:
        print(f"{r.short_id:<13} {r.state:<10} {core.format_amount(r.votes_for):>14} {core.format_amount(r.votes_against):>14} "
              f"{core.format_amount(r.votes_abstain):>12} {core.format_amount(r.quorum):>12}  {r.when:<40} {r.description[:80]}")
    return EXIT_OK


@_run
def cmd_delegate(args) -> int:
    from depai_nodes.chain.config import checksum
    from depai_nodes.dao import core

    client = _client(args, signing=True)
    token = client.contract("FleetToken")
    me = client.signer.address
    to = checksum(args.to) if args.to else me
    r = token.transact("delegate", to)
    _say(f"{me} delegated its {core.format_amount(token.call('balanceOf', me))} FLEET of votes to {to} in block "
         f"{r.block_number} ({r.tx_hash}); {to} now has {core.format_amount(token.call('getVotes', to))} votes "
         "(they count in proposals made from the next block on)")
    return EXIT_OK


@_run
def cmd_revenue(args) -> int:
    from depai_nodes.dao import core

    client = _client(args, signing=bool(args.key or args.keystore))
    who = args.holder or (client.signer.address if client.signer else None)
    policy = client.contract("FleetPolicy")
    treasury = client.contract("FleetTimelock").address
    rows = core.distributions(client, who)
    if args.json:
        print(core.to_json(rows))
        return EXIT_OK
    print(f"treasury {treasury}: {core.format_amount(client.contract('FleetToken').call('balanceOf', treasury))} FLEET; "
          f"protocol fee {policy.call('protocolFeeBps')} bps (cap {policy.call('MAX_PROTOCOL_FEE_BPS')})")
    if not rows:
        print("no distributions yet")
        return EXIT_OK
    print(f"{'id':>4} {'snapshot':>9} {'amount':>16} {'claimed':>16} {'unclaimed':>14}" + (f" {'yours':>14}" if who else ""))
    for d in rows:
        mine = ("claimed" if d.has_claimed else core.format_amount(d.mine)) if who else ""
        print(f"{d.id:>4} {d.snapshot:>9} {core.format_amount(d.amount):>16} {core.format_amount(d.claimed):>16} "
              f"{core.format_amount(d.amount - d.claimed):>14}" + (f" {mine:>14}" if who else ""))
    return EXIT_OK


@_run
def cmd_claim(args) -> int:
    from depai_nodes.dao import core

    client = _client(args, signing=True)
    total, ids, r = core.claim_all(client, args.id or None, args.to)
    if not ids:
        _say(f"nothing to claim for {client.signer.address}")
        return EXIT_OK
    _say(f"claimed {core.format_amount(total)} FLEET from distribution(s) {', '.join(map(str, ids))} to "
         f"{args.to or client.signer.address} in block {r.block_number} ({r.tx_hash})")
    print(total)
    return EXIT_OK


# ---------------------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="chain config (default: .depai/chain.local.json from `depai chain up`)")
    p.add_argument("--key", default=None, metavar="demo:N", help="an anvil demo key (local chain only)")
    p.add_argument("--keystore", default=None, metavar="PATH", help="an encrypted keystore (real networks)")
    p.add_argument("--passphrase-env", default=None, metavar="VAR", help="env var with the keystore passphrase")


def register(subparsers) -> None:
    dao = subparsers.add_parser("dao", help="the fleet DAO: propose, vote, queue, execute, status, delegate, revenue, claim",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = dao.add_subparsers(dest="dao_command", required=True)

    p = sub.add_parser("propose", help="propose policy changes or a revenue distribution (--now: the whole round, local)")
    _common(p)
    p.add_argument("--max-speed", type=float, default=None, help="speed limit, m/s")
    p.add_argument("--zones", action="append", metavar="FILE", help="add/replace keep-out zones from YAML or GeoJSON (metres, map frame)")
    p.add_argument("--zone", action="append", metavar="ID:x,y;x,y;x,y", help="add/replace one keep-out polygon (metres)")
    p.add_argument("--remove-zone", action="append", metavar="ID")
    grp = p.add_mutually_exclusive_group()
    grp.add_argument("--pause", dest="paused", action="store_const", const=True, default=None, help="pause the fleet")
    grp.add_argument("--unpause", dest="paused", action="store_const", const=False, help="resume the fleet")
    p.add_argument("--min-task-price", default=None, metavar="FLEET", help="e.g. 2.5 (or base units: 1000wei)")
    p.add_argument("--spending-cap", default=None, metavar="FLEET", help="per machine per day; 0: none")
    p.add_argument("--protocol-fee", type=int, default=None, metavar="BPS", help="DAO fee on task payouts, basis points")
    p.add_argument("--arrival-tolerance", type=float, default=None, metavar="M",
                   help="cap on a task's arrival tolerance, metres (TaskMarket refuses wider tasks)")
    p.add_argument("--guardian", default=None, metavar="ADDRESS|none", help="a new guardian (pause only), or none to revoke it")
    p.add_argument("--distribute", default=None, metavar="FLEET", help="share this much of the treasury among the holders")
    p.add_argument("--snapshot", type=int, default=None, metavar="BLOCK", help="whose balances count (default: the head now)")
    p.add_argument("--description", default=None)
    p.add_argument("--now", action="store_true", help="local chain: propose, vote, queue and execute at once")
    p.add_argument("--voters", default=None, metavar="N,N", help="with --now: demo key indices that vote for (default: the demo members)")
    p.set_defaults(func=cmd_propose)

    v = sub.add_parser("vote", help="vote on an active proposal")
    _common(v)
    v.add_argument("proposal", help="proposal id (or its first 6+ digits, as `status` shows)")
    v.add_argument("support", choices=("for", "against", "abstain"))
    v.add_argument("--reason", default=None)
    v.set_defaults(func=cmd_vote)

    for name, fn, text in (("queue", cmd_queue, "queue a passed proposal in the timelock"),
                           ("execute", cmd_execute, "execute a queued proposal after the timelock delay")):
        c = sub.add_parser(name, help=text)
        _common(c)
        c.add_argument("proposal")
        c.set_defaults(func=fn)

    s = sub.add_parser("status", help="every proposal with state, votes and time left")
    _common(s)
    s.add_argument("proposal", nargs="?", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    d = sub.add_parser("delegate", help="delegate your votes (default: to yourself, which activates them)")
    _common(d)
    d.add_argument("to", nargs="?", default=None, metavar="ADDRESS")
    d.set_defaults(func=cmd_delegate)

    r = sub.add_parser("revenue", help="treasury, protocol fee, distributions and your share")
    _common(r)
    r.add_argument("--holder", default=None, metavar="ADDRESS", help="whose shares to show (default: the key's)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_revenue)

    c = sub.add_parser("claim", help="claim your revenue shares")
    _common(c)
    c.add_argument("--id", type=int, action="append", metavar="N", help="a distribution (repeatable; default: all with a share)")
    c.add_argument("--to", default=None, metavar="ADDRESS", help="pay to (default: yourself)")
    c.set_defaults(func=cmd_claim)
