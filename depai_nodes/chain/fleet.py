"""The machine economy in Python terms: identity, market, data anchoring and policy reads.

A thin, typed facade over ChainClient: SI units in, integer on-chain units out, EIP-712 typed
data built here so that what a machine signs is exactly what the contracts hash.
"""

from __future__ import annotations

from typing import Iterable

from .client import ChainClient, SendOutcome
from .config import checksum
from .merkle import MerkleTree
from .models import BatchRecord, DataBatch, MachineInfo, PolicySnapshot, TaskInfo, TaskReport, TaskStatus, TxResult, id32, to_mm
from .errors import SignerError
from .signer import Signer

__all__ = ["Fleet", "read_policy", "MACHINE_ATTRIBUTE", "BATCH_TYPES", "REPORT_TYPES", "station_id"]

MACHINE_ATTRIBUTE = b"depai:machine"

BATCH_TYPES = {
    "Batch": [
        {"name": "machine", "type": "address"},
        {"name": "batchId", "type": "bytes32"},
        {"name": "root", "type": "bytes32"},
        {"name": "messageCount", "type": "uint64"},
        {"name": "startTime", "type": "uint64"},
        {"name": "endTime", "type": "uint64"},
        {"name": "uri", "type": "string"},
    ]
}
REPORT_TYPES = {
    "TaskReport": [
        {"name": "taskId", "type": "uint256"},
        {"name": "machine", "type": "address"},
        {"name": "batchId", "type": "bytes32"},
        {"name": "x", "type": "int64"},
        {"name": "y", "type": "int64"},
        {"name": "yaw", "type": "int64"},
        {"name": "time", "type": "uint64"},
    ]
}
_PAGE = 200  # tasks per getTasks call


def station_id(label: str) -> bytes:
    """A station label as the bytes32 the market stores (UTF-8, <= 32 bytes, zero padded; "" -> zeros)."""
    raw = label.encode()
    if len(raw) > 32:
        raise ValueError(f"station label longer than 32 bytes of UTF-8: {label!r:.60}")
    return raw.ljust(32, b"\0")


class Fleet:
    """High-level operations for one process (one key) on one deployment."""

    def __init__(self, client: ChainClient, address: str | None = None):
        """``address``: the machine this fleet view is about when ``client`` is read-only (a node
        that reads its machine's standing but must not hold the key; the wallet announces it)."""
        self.client = client
        self._address = checksum(address) if address else None
        self.did = client.contract("MachineDID", client.config.did_address)
        self.token = client.contract("FleetToken")
        self.policy_contract = client.contract("FleetPolicy")
        self.data = client.contract("DataRegistry")
        self.market = client.contract("TaskMarket")

    @property
    def me(self) -> str:
        """The machine's address: the signer's, or the one given to a read-only view."""
        if self.client.signer is not None:
            return self.client.signer.address
        if self._address is None:
            raise SignerError("this client is read-only (no signer) and no machine address was given")
        return self._address

    def _domain(self, name: str, contract) -> dict:
        return {"name": name, "version": "1", "chainId": self.client.config.chain_id, "verifyingContract": contract.address}

    # ------------------------------------------------------------------ identity

    def register_did(self, label: bytes = b"depai-machine", validity_blocks: int = 0) -> TxResult:
        """Write this machine's fleet-membership attribute on its own DID."""
        return self.did.transact("addAttribute", self.me, MACHINE_ATTRIBUTE, label, validity_blocks)

    def attribute(self, account: str, name: bytes) -> dict:
        return self.did.call("readAttribute", checksum(account), name)

    # ------------------------------------------------------------------ market

    def approve(self, amount: int, spender: str | None = None) -> TxResult:
        return self.token.transact("approve", spender or self.market.address, amount)

    def register_machine(self, stake: int) -> TxResult:
        self.approve(stake)
        return self.market.transact("registerMachine", stake)

    def machine_info(self, machine: str | None = None) -> MachineInfo:
        raw = self.market.call("machineInfo", checksum(machine) if machine else self.me)
        return MachineInfo(registered=raw["registered"], active_tasks=raw["activeTasks"], stake=raw["stake"])

    def is_admitted(self, machine: str | None = None) -> bool:
        return self.market.call("admitted", checksum(machine) if machine else self.me)

    def admit_machines(self, machines: list[str]) -> TxResult:
        """Admit machines to the market (this key must hold ADMITTER_ROLE: the fleet owner)."""
        return self.market.transact("admitMachines", [checksum(m) for m in machines])

    def revoke_machine(self, machine: str) -> TxResult:
        return self.market.transact("revokeMachine", checksum(machine))

    def max_arrival_tolerance(self) -> float:
        """FleetPolicy's cap on a task's arrival tolerance, m (a vote sets it: ``set_tolerance_cap_action``)."""
        return self.policy_contract.call("maxArrivalToleranceMm") / 1000.0

    @staticmethod
    def set_tolerance_cap_action(tolerance: float):
        """The governance action that sets the cap (FleetPolicy is owned by the timelock)."""
        from .governance import Action

        return Action("FleetPolicy", "setMaxArrivalTolerance", (to_mm(tolerance),))

    def post_task_call(self, x: float, y: float, yaw: float, deadline: int, reward: int, *, tolerance: float, station: str = ""):
        """The postTask call (unsigned) in SI units: m, m, rad, tolerance m, unix-s deadline."""
        return self.market.prepare("postTask", to_mm(x), to_mm(y), to_mm(yaw), to_mm(tolerance), deadline, reward,
                                   station_id(station))

    def post_task_tx(self, x: float, y: float, yaw: float, deadline: int, reward: int, *, tolerance: float,
                     station: str = "", approve: bool = True) -> tuple[int, TxResult]:
        """Post a task; (its id, the receipt)."""
        if approve:
            self.approve(reward)
        r = self.client.transact(self.post_task_call(x, y, yaw, deadline, reward, tolerance=tolerance, station=station))
        return self.task_id_of(r), r

    def post_task(self, x: float, y: float, yaw: float, deadline: int, reward: int, *, tolerance: float, station: str = "",
                  approve: bool = True) -> int:
        """Post a task (metres/radians, tolerance in metres, unix-second deadline); returns its id."""
        return self.post_task_tx(x, y, yaw, deadline, reward, tolerance=tolerance, station=station, approve=approve)[0]

    def task_id_of(self, receipt: TxResult) -> int:
        """The task id a postTask receipt created."""
        for raw in receipt.logs:
            ev = self.market.abi.decode_log(raw)
            if ev and ev["event"] == "TaskPosted":
                return ev["taskId"]
        raise RuntimeError("TaskPosted event missing from a successful postTask receipt")

    def task(self, task_id: int) -> TaskInfo:
        return TaskInfo.from_chain(task_id, self.market.call("getTask", task_id))

    def task_count(self) -> int:
        return self.market.call("taskCount")

    def tasks(self, first_id: int = 1, block: int | str = "latest") -> list[TaskInfo]:
        """Every task from ``first_id`` on (one call per 200)."""
        out: list[TaskInfo] = []
        first = max(1, first_id)
        while True:
            page = self.market.call("getTasks", first, _PAGE, block=block)
            out += [TaskInfo.from_chain(first + i, raw) for i, raw in enumerate(page)]
            if len(page) < _PAGE:
                return out
            first += _PAGE

    def open_tasks(self, first_id: int = 1) -> list[TaskInfo]:
        """Tasks still open (status Open, deadline not passed at the latest block)."""
        bn = self.client.block_number()
        now = int(self.client.get_block(bn)["timestamp"], 16)
        return [t for t in self.tasks(first_id, block=bn) if t.status == TaskStatus.OPEN and t.deadline >= now]

    def accept_task(self, task_id: int) -> TxResult:
        return self.market.transact("acceptTask", task_id)

    accept = accept_task

    def arrival_report(self, task_id: int, batch_id: bytes, x_mm: int, y_mm: int, yaw_mrad: int, time: int,
                       machine: str | None = None) -> TaskReport:
        return TaskReport(task_id=task_id, machine=machine or self.me, batch_id=batch_id, x_mm=x_mm, y_mm=y_mm,
                          yaw_mrad=yaw_mrad, time=time)

    def _signer(self) -> Signer:
        if self.client.signer is None:
            raise SignerError("this client is read-only (no signer)")
        return self.client.signer

    def sign_report(self, report: TaskReport, signer: Signer | None = None) -> bytes:
        s = signer or self._signer()
        return s.sign_typed_data(self._domain("DePAI TaskMarket", self.market), REPORT_TYPES, report.typed_message())

    def complete_call(self, report: TaskReport, proof: list[bytes], signature: bytes):
        return self.market.prepare("completeTask", report.as_tuple(), list(proof), signature)

    def complete_task(self, report: TaskReport, proof: list[bytes], signature: bytes | None = None) -> TxResult:
        """Settle a task: the report (signed here when no signature is given) and the Merkle
        proof of its arrival leaf in the cited batch."""
        sig = signature if signature is not None else self.sign_report(report)
        return self.client.transact(self.complete_call(report, proof, sig))

    complete = complete_task

    def refund(self, task_id: int) -> TxResult:
        return self.market.transact("refund", task_id)

    def set_payee(self, payee: str, machine: str | None = None) -> TxResult:
        """Where a machine's earnings go: set once by the machine, then only by its payee."""
        return self.market.transact("setPayee", checksum(machine) if machine else self.me, checksum(payee))

    def payee_of(self, machine: str | None = None) -> str:
        return self.market.call("payeeOf", checksum(machine) if machine else self.me)

    # ------------------------------------------------------------------ data anchoring

    def make_batch(self, messages: list[bytes], batch_id: str | bytes, start_time: int, end_time: int, uri: str = "",
                   machine: str | None = None) -> tuple[DataBatch, MerkleTree]:
        tree = MerkleTree(messages)
        bid = id32(batch_id) if isinstance(batch_id, str) or len(batch_id) != 32 else batch_id
        batch = DataBatch(machine=machine or self.me, batch_id=bid, root=tree.root, message_count=len(tree),
                          start_time=start_time, end_time=end_time, uri=uri)
        return batch, tree

    def sign_batch(self, batch: DataBatch, signer: Signer | None = None) -> bytes:
        s = signer or self._signer()
        return s.sign_typed_data(self._domain("DePAI DataRegistry", self.data), BATCH_TYPES, batch.typed_message())

    def anchor(self, batch: DataBatch, signature: bytes | None = None) -> TxResult:
        return self.data.transact("anchor", batch.as_tuple(), signature if signature is not None else self.sign_batch(batch))

    def anchor_many(self, batches: Iterable[DataBatch]) -> list[SendOutcome]:
        """One transaction per batch, all sent through the batch path (local nonces, one RPC batch)."""
        calls = [self.data.prepare("anchor", b.as_tuple(), self.sign_batch(b)) for b in batches]
        return self.client.send_many(calls)

    def batch_record(self, machine: str, batch_id: bytes) -> BatchRecord:
        r = self.data.call("getBatch", checksum(machine), batch_id)
        return BatchRecord(machine=checksum(machine), batch_id=batch_id, root=r["root"], message_count=r["messageCount"],
                           start_time=r["startTime"], end_time=r["endTime"], anchored_at_block=r["anchoredAt"],
                           anchored_at_time=r["anchoredTime"],
                           submitter=r["submitter"], uri=r["uri"])

    def verify_message(self, machine: str, batch_id: bytes, message: bytes, proof: list[bytes]) -> bool:
        return self.data.call("verifyMessage", checksum(machine), batch_id, message, proof)

    # ------------------------------------------------------------------ policy

    def policy(self, block: int | str = "latest") -> PolicySnapshot:
        return read_policy(self.client, block)


def read_policy(client: ChainClient, block: int | str = "latest") -> PolicySnapshot:
    """FleetPolicy as of ``block`` (one eth_call of its snapshot() view, pinned to that block)."""
    contract = client.contract("FleetPolicy")
    bn = client.block_number() if block == "latest" else int(block)
    raw = contract.call("snapshot", block=bn)
    return PolicySnapshot.from_chain(raw, block_number=bn, address=contract.address)
