"""The DAO from a member's seat: what a proposal changes, where every proposal stands, what a
holder may claim. ROS-free; `cli.py` is the thin command line over it.

Everything here reads or writes the chain through `depai_nodes.chain` (ChainClient, the
Governor/Timelock round in `chain.governance`); nothing is cached locally, so any machine with
the deployment's config sees the same proposals and can queue or execute them.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from depai_nodes.chain import governance as g
from depai_nodes.chain.client import ChainClient
from depai_nodes.chain.config import checksum
from depai_nodes.chain.errors import ChainError, InvalidAddressError
from depai_nodes.chain.models import id_str
from depai_nodes.chain.units import TOKEN_DECIMALS, format_amount

__all__ = [
    "DaoError",
    "ZoneFileError",
    "ProposalChange",
    "ProposalStatus",
    "Distribution",
    "parse_amount",
    "format_amount",
    "parse_zone",
    "load_zones",
    "build_actions",
    "proposal_status",
    "all_status",
    "distributions",
    "claim_all",
    "SUPPORT",
]

ZERO = "0x0000000000000000000000000000000000000000"
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


class DaoError(ValueError):
    """Bad input to a DAO command (a clear one-line message, never a traceback)."""


class ZoneFileError(DaoError):
    """A keep-out zone file that is not the YAML or GeoJSON described in the README."""


# ---------------------------------------------------------------------------- amounts


def parse_amount(text: str | int) -> int:
    """FLEET as typed by a person -> base units: '2.5' -> 2.5e18; '1000wei' -> 1000 (exact)."""
    if isinstance(text, int):
        return text
    t = str(text).strip().replace("_", "")
    try:
        if t.lower().endswith("wei"):
            value = int(t[:-3])
        else:
            d = Decimal(t)
            if not d.is_finite():
                raise InvalidOperation
            scaled = d * (10**TOKEN_DECIMALS)
            if scaled != scaled.to_integral_value():
                raise DaoError(f"amount {text!r} has more than {TOKEN_DECIMALS} decimals")
            value = int(scaled)
    except (InvalidOperation, ValueError):
        raise DaoError(f"not an amount: {text!r} (FLEET, e.g. 2.5, or base units with 'wei', e.g. 1000wei)") from None
    if value < 0:
        raise DaoError(f"amount must not be negative: {text!r}")
    return value


# ---------------------------------------------------------------------------- zones


def parse_zone(text: str) -> tuple[str, list[tuple[float, float]]]:
    """'dock:0,0;2,0;2,2' -> ('dock', [(0, 0), (2, 0), (2, 2)]) (metres, map frame)."""
    zid, sep, rest = text.partition(":")
    try:
        pts = [tuple(float(v) for v in p.split(",")) for p in rest.split(";") if p.strip()]
        if not sep or not zid or any(len(p) != 2 for p in pts):
            raise ValueError
    except ValueError:
        raise DaoError(f"zone must be ID:x,y;x,y;x,y[;...] in metres, got {text!r}") from None
    return zid, _polygon(zid, pts)


def _polygon(zid: str, points) -> list[tuple[float, float]]:
    try:
        pts = [(float(p[0]), float(p[1])) for p in points]
        if any(len(p) < 2 for p in points):
            raise ValueError
    except (TypeError, ValueError, IndexError, KeyError):
        raise ZoneFileError(f"zone {zid!r}: each vertex must be [x, y] in metres") from None
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts = pts[:-1]  # GeoJSON rings repeat their first vertex at the end
    if not all(math.isfinite(v) for p in pts for v in p):
        raise ZoneFileError(f"zone {zid!r}: coordinates must be finite numbers")
    if len(pts) < 3:
        raise ZoneFileError(f"zone {zid!r}: a polygon needs at least 3 distinct vertices, got {len(pts)}")
    if len(pts) > 64:
        raise ZoneFileError(f"zone {zid!r}: at most 64 vertices (FleetPolicy.MAX_VERTICES), got {len(pts)}")
    if not 1 <= len(zid.encode()) <= 32:
        raise ZoneFileError(f"zone id {zid!r} must be 1..32 bytes")
    return pts


def _geojson_zones(doc: dict) -> dict[str, list[tuple[float, float]]]:
    kind = doc.get("type")
    features = doc.get("features") if kind == "FeatureCollection" else [doc] if kind == "Feature" else None
    if features is None:
        if kind in ("Polygon", "MultiPolygon"):
            features = [{"type": "Feature", "geometry": doc, "properties": {}}]
        else:
            raise ZoneFileError(f"GeoJSON of type {kind!r}: expected a FeatureCollection, Feature, Polygon or MultiPolygon")
    out: dict[str, list[tuple[float, float]]] = {}
    for n, f in enumerate(features or [], start=1):
        if not isinstance(f, dict):
            raise ZoneFileError(f"feature {n}: not an object")
        geom = f.get("geometry") or {}
        props = f.get("properties") or {}
        zid = str(f.get("id") or props.get("id") or props.get("name") or f"zone{n}")
        gtype = geom.get("type")
        coords = geom.get("coordinates")
        if gtype == "Polygon":
            rings = [coords]
        elif gtype == "MultiPolygon":
            rings = coords
        else:
            raise ZoneFileError(f"feature {zid!r}: geometry {gtype!r} is not a Polygon or MultiPolygon")
        if not isinstance(rings, list) or not rings:
            raise ZoneFileError(f"feature {zid!r}: no coordinates")
        for k, poly in enumerate(rings):
            if not isinstance(poly, list) or not poly:
                raise ZoneFileError(f"feature {zid!r}: empty polygon")
            if len(poly) > 1:
                raise ZoneFileError(f"feature {zid!r}: polygons with holes are not supported (FleetPolicy zones are simple)")
            name = zid if len(rings) == 1 else f"{zid}-{k + 1}"
            if name in out:
                raise ZoneFileError(f"zone id {name!r} appears twice")
            out[name] = _polygon(name, poly[0])
    if not out:
        raise ZoneFileError("the GeoJSON holds no polygon")
    return out


def _yaml_zones(doc) -> dict[str, list[tuple[float, float]]]:
    items = doc.get("keep_out_zones", doc.get("zones", doc)) if isinstance(doc, dict) else doc
    out: dict[str, list[tuple[float, float]]] = {}
    if isinstance(items, dict):  # {id: [[x, y], ...]}
        pairs = list(items.items())
    elif isinstance(items, list):  # [{id, polygon}, ...] (the policy file's form)
        pairs = []
        for n, z in enumerate(items, start=1):
            if not isinstance(z, dict) or "polygon" not in z:
                raise ZoneFileError(f"zone {n}: expected a mapping with 'id' and 'polygon'")
            pairs.append((str(z.get("id") or f"zone{n}"), z["polygon"]))
    else:
        raise ZoneFileError("expected keep_out_zones: a list of {id, polygon} or a mapping id -> polygon")
    for zid, poly in pairs:
        if str(zid) in out:
            raise ZoneFileError(f"zone id {zid!r} appears twice")
        if not isinstance(poly, list):
            raise ZoneFileError(f"zone {zid!r}: polygon must be a list of [x, y]")
        out[str(zid)] = _polygon(str(zid), poly)
    if not out:
        raise ZoneFileError("the file holds no zone")
    return out


def load_zones(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Keep-out zones from a YAML file (config/policy.yaml's ``keep_out_zones`` form, or a
    mapping id -> polygon) or a GeoJSON file (Polygon / MultiPolygon features; coordinates are
    metres in the map frame, not WGS84). Zone ids: feature ``id``, ``properties.id`` or ``.name``."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise ZoneFileError(f"cannot read zone file {p}: {e.strerror or e}") from None
    try:
        doc = yaml.safe_load(text)  # YAML is a superset of JSON, so GeoJSON parses too
    except yaml.YAMLError as e:
        raise ZoneFileError(f"{p}: neither YAML nor JSON: {str(e).splitlines()[0]}") from None
    try:
        if isinstance(doc, dict) and doc.get("type") in ("FeatureCollection", "Feature", "Polygon", "MultiPolygon"):
            return _geojson_zones(doc)
        return _yaml_zones(doc)
    except ZoneFileError as e:
        raise ZoneFileError(f"{p}: {e}") from None


# ---------------------------------------------------------------------------- proposals


class ProposalChange(BaseModel):
    """What a `depai dao propose` asks for (SI units: m/s, metres; amounts in base units)."""

    model_config = ConfigDict(extra="forbid")

    max_speed: float | None = Field(None, gt=0, le=50)
    paused: bool | None = None
    min_task_price: int | None = Field(None, ge=0)
    spending_cap: int | None = Field(None, ge=0)
    protocol_fee_bps: int | None = Field(None, ge=0, le=10_000)
    max_arrival_tolerance: float | None = Field(None, gt=0, le=1000, description="m: the widest arrival tolerance a task may be posted with")
    guardian: str | None = None  # an address; "none" revokes
    zones: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)
    remove_zones: list[str] = Field(default_factory=list)
    distribute: int | None = Field(None, gt=0, description="FLEET base units from the treasury to the holders")
    snapshot_block: int | None = Field(None, ge=0)


def build_actions(client: ChainClient, change: ProposalChange) -> list[g.Action]:
    """The governance actions for ``change``; DaoError for anything the contracts would refuse."""
    guardian = None
    if change.guardian is not None:
        if change.guardian.strip().lower() in ("none", "0", "revoke", ZERO):
            guardian = ZERO
        else:
            try:
                guardian = checksum(change.guardian.strip())
            except InvalidAddressError as e:
                raise DaoError(f"--guardian: {e}") from None
    if change.protocol_fee_bps is not None:
        cap = client.contract("FleetPolicy").call("MAX_PROTOCOL_FEE_BPS")
        if change.protocol_fee_bps > cap:
            raise DaoError(f"protocol fee {change.protocol_fee_bps} bps is above the contract's cap of {cap} bps")
    try:
        actions = g.policy_actions(max_speed=change.max_speed, paused=change.paused, min_task_price=change.min_task_price,
                                   spending_cap=change.spending_cap, zones=change.zones or None,
                                   remove_zones=change.remove_zones or None, protocol_fee_bps=change.protocol_fee_bps,
                                   guardian=guardian) if _has_policy_change(change) else []
    except ValueError as e:
        raise DaoError(str(e)) from None
    if change.max_arrival_tolerance is not None:
        from depai_nodes.chain.fleet import Fleet

        actions.append(Fleet.set_tolerance_cap_action(change.max_arrival_tolerance))
    if change.distribute is not None:
        treasury = client.contract("FleetTimelock").address
        held = client.contract("FleetToken").call("balanceOf", treasury)
        if change.distribute > held:
            raise DaoError(f"the treasury holds {format_amount(held)} FLEET, less than the {format_amount(change.distribute)} to distribute")
        head = client.block_number()
        if change.snapshot_block is not None and change.snapshot_block > head:
            raise DaoError(f"snapshot block {change.snapshot_block} is in the future (head {head})")
        actions += g.distribution_actions(client, change.distribute, change.snapshot_block)
    if not actions:
        raise DaoError("nothing to propose: give at least one change (see depai dao propose --help)")
    return actions


def existing_proposal(client: ChainClient, actions: list[g.Action], description: str) -> tuple[int, str] | None:
    """(id, state) when the same actions with the same description were proposed before (the
    Governor refuses a second one: its id is the hash of both)."""
    from eth_utils import keccak

    gov = client.contract("FleetGovernor")
    targets, values, datas = [], [], []
    for a in actions:
        t = client.contract(a.contract)
        targets.append(t.address)
        values.append(0)
        datas.append(bytes.fromhex(t.abi.encode_call(a.fn, a.args)[2:]))
    pid = gov.call("hashProposal", targets, values, datas, keccak(text=description))
    if gov.call("proposalSnapshot", pid) == 0:
        return None
    return pid, g.STATES[gov.call("state", pid)]


def _has_policy_change(c: ProposalChange) -> bool:
    return any(v not in (None, {}, []) for v in (c.max_speed, c.paused, c.min_task_price, c.spending_cap,
                                                 c.protocol_fee_bps, c.guardian, c.zones, c.remove_zones))


def describe_actions(client: ChainClient, actions: list[g.Action]) -> str:
    """A readable default description: 'setMaxSpeed(400), setKeepOutZone(dock, 4 vertices)'."""
    parts = []
    for a in actions:
        if a.fn == "setKeepOutZone":
            parts.append(f"setKeepOutZone({id_str(a.args[0])}, {len(a.args[1])} vertices)")
        elif a.fn == "approve" and a.contract == "FleetToken":
            continue  # the allowance that the distribution below draws on
        elif a.fn == "createDistribution":
            parts.append(f"distribute {format_amount(a.args[1])} FLEET from the treasury to the holders at block {a.args[2]}")
        elif a.fn == "removeKeepOutZone":
            parts.append(f"removeKeepOutZone({id_str(a.args[0])})")
        else:
            parts.append(f"{a.fn}({', '.join(str(x) for x in a.args)})")
    return "depai dao: " + ", ".join(parts)


class ProposalStatus(BaseModel):
    proposal_id: int
    state: str
    votes_for: int
    votes_against: int
    votes_abstain: int
    quorum: int
    proposer: str
    description: str
    vote_start: int
    vote_end: int
    eta: int = 0  # unix seconds the timelock allows execution (queued proposals)
    when: str = ""  # human: blocks or seconds left, or what to do next
    actions: int = 0

    @property
    def short_id(self) -> str:
        return str(self.proposal_id)[:12]


def proposal_status(client: ChainClient, p: g.Proposal, *, head: int | None = None, now: int | None = None) -> ProposalStatus:
    gov = client.contract("FleetGovernor")
    head = client.block_number() if head is None else head
    if now is None:
        now = int(client.get_block("latest")["timestamp"], 16)
    st = g.state(client, p)
    votes = gov.call("proposalVotes", p.proposal_id)
    quorum = gov.call("quorum", p.vote_start) if p.vote_start < head else gov.call("quorum", head - 1)
    eta = gov.call("proposalEta", p.proposal_id) if st == "Queued" else 0
    if st == "Pending":
        when = f"vote opens in {p.vote_start + 1 - head} block(s) (block {p.vote_start + 1})"
    elif st == "Active":
        when = f"vote closes in {p.vote_end + 1 - head} block(s) (after block {p.vote_end})"
    elif st == "Succeeded":
        when = "passed: queue it"
    elif st == "Queued":
        when = f"executable in {eta - now} s" if eta > now else "executable now"
    elif st == "Defeated":
        reached = votes["forVotes"] + votes["abstainVotes"] >= quorum
        when = "majority against" if reached else "quorum not reached"
    else:
        when = "-"
    return ProposalStatus(proposal_id=p.proposal_id, state=st, votes_for=votes["forVotes"], votes_against=votes["againstVotes"],
                          votes_abstain=votes["abstainVotes"], quorum=quorum, proposer=p.proposer, description=p.description,
                          vote_start=p.vote_start, vote_end=p.vote_end, eta=eta, when=when, actions=len(p.targets))


def all_status(client: ChainClient) -> list[ProposalStatus]:
    head = client.block_number()
    now = int(client.get_block("latest")["timestamp"], 16)
    return [proposal_status(client, p, head=head, now=now) for p in g.proposals(client)]


# ---------------------------------------------------------------------------- revenue


class Distribution(BaseModel):
    id: int
    asset: str
    snapshot: int
    amount: int
    eligible_supply: int
    claimed: int
    funder: str
    mine: int = 0  # what the asking holder may still claim
    has_claimed: bool = False


def distributions(client: ChainClient, holder: str | None = None) -> list[Distribution]:
    dist = client.contract("RevenueDistributor")
    out = []
    for i in range(1, dist.call("distributionCount") + 1):
        d = dist.call("distribution", i)
        row = Distribution(id=i, asset=d["asset"], snapshot=d["snapshot"], amount=d["amount"], eligible_supply=d["eligibleSupply"],
                           claimed=d["claimed"], funder=d["funder"])
        if holder:
            row.mine = dist.call("claimable", i, checksum(holder))
            row.has_claimed = dist.call("hasClaimed", i, checksum(holder))
        out.append(row)
    return out


def claim_all(client: ChainClient, ids: list[int] | None = None, to: str | None = None) -> tuple[int, list[int], object]:
    """Claim the signer's shares of ``ids`` (default: every distribution with something to
    claim) in one transaction, paid to ``to`` (default: the signer). Returns (amount, ids, receipt)."""
    if client.signer is None:
        raise ChainError("claiming needs a signing key")
    me = client.signer.address
    dist = client.contract("RevenueDistributor")
    if ids is None:
        ids = [d.id for d in distributions(client, me) if d.mine > 0]
        if not ids:
            return 0, [], None
    target = checksum(to) if to else me
    total = sum(dist.call("claimable", i, me) for i in ids)
    receipt = dist.transact("claimMany", list(ids), target)
    return total, list(ids), receipt


def to_json(rows: list[BaseModel]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in rows], indent=2)
