// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MachineDID} from "./MachineDID.sol";
import {FleetPolicy} from "./FleetPolicy.sol";
import {DataRegistry} from "./DataRegistry.sol";

/// @title TaskMarket
/// @notice Requesters post tasks (a goal pose, a deadline, a reward escrowed in FleetToken);
///         registered, staked machines accept them; a machine-signed (EIP-712) completion report
///         that references an anchored data batch releases the reward. After the deadline the
///         requester gets the reward back. A report that proves a violation of the fleet policy
///         (the completion pose inside a keep-out zone, or completion while the fleet is paused,
///         judged by the rules in force at the report's time) slashes the machine's stake
///         instead, in favour of the requester.
///         Revenue: the DAO's protocol fee (FleetPolicy.protocolFeeBps, capped there) is taken
///         from every payout and sent to the treasury (FleetPolicy.treasury(), the timelock); the
///         rest goes to the machine's payee, its owner account (a RevenueSplitter for co-owned
///         machines), or to the machine itself while none is set.
/// @dev Anyone may submit a machine-signed report (the requester, a relayer): the signature, not
///      the sender, proves what the machine claimed, so a machine cannot hide a violation by not
///      submitting its own report. Poses are millimetres / milliradians in the map frame.
contract TaskMarket is EIP712 {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Open,
        Accepted,
        Completed,
        Refunded,
        Cancelled,
        Slashed
    }

    struct Task {
        address requester;
        address machine;
        uint256 reward;
        uint64 deadline; // unix seconds
        int64 goalX; // mm
        int64 goalY; // mm
        int64 goalYaw; // mrad
        Status status;
        bytes32 batchId; // the anchored batch the completion report referenced
        uint64 acceptedAt; // timestamp of acceptTask; a report may not claim an earlier time
    }

    struct Machine {
        bool registered;
        uint32 activeTasks;
        uint256 stake;
    }

    struct TaskReport {
        uint256 taskId;
        address machine;
        bytes32 batchId;
        int64 x; // mm, where the machine claims it completed the task
        int64 y;
        uint64 timestamp;
    }

    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "TaskReport(uint256 taskId,address machine,bytes32 batchId,int64 x,int64 y,uint64 timestamp)"
    );
    /// @notice The DID attribute a machine must hold to register (its fleet membership).
    bytes public constant MACHINE_ATTRIBUTE = "depai:machine";

    IERC20 public immutable token;
    MachineDID public immutable did;
    FleetPolicy public immutable policy;
    DataRegistry public immutable data;
    uint256 public immutable minStake;
    uint16 public immutable slashBps;

    uint256 public taskCount;
    mapping(uint256 => Task) private _tasks;
    mapping(address => Machine) private _machines;
    mapping(address => mapping(uint256 => uint256)) public spentOnDay; // requester => day => amount
    mapping(address => address) private _payee; // machine => where its earnings go (0: itself)

    event MachineRegistered(address indexed machine, uint256 stake);
    event StakeChanged(address indexed machine, uint256 stake);
    event TaskPosted(
        uint256 indexed taskId, address indexed requester, uint256 reward, uint64 deadline, int64 goalX, int64 goalY, int64 goalYaw
    );
    event TaskAccepted(uint256 indexed taskId, address indexed machine);
    event TaskCompleted(uint256 indexed taskId, address indexed machine, bytes32 batchId, uint256 reward);
    event TaskRefunded(uint256 indexed taskId, address indexed requester, uint256 reward);
    event TaskCancelled(uint256 indexed taskId);
    event TaskPaid(uint256 indexed taskId, address indexed payee, uint256 amount, address treasury, uint256 fee);
    event PayeeSet(address indexed machine, address indexed payee);
    event MachineSlashed(uint256 indexed taskId, address indexed machine, uint256 amount, bytes32 reason);

    error NoMachineDid(address machine);
    error AlreadyRegistered(address machine);
    error NotRegistered(address machine);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error StakeLocked(address machine, uint32 activeTasks);
    error RewardBelowMinimum(uint256 reward, uint256 minTaskPrice);
    error SpendingCapExceeded(address requester, uint256 wouldSpend, uint256 cap);
    error DeadlineInPast(uint64 deadline);
    error DeadlinePassed(uint256 taskId, uint64 deadline);
    error DeadlineNotPassed(uint256 taskId, uint64 deadline);
    error TaskNotFound(uint256 taskId);
    error TaskNotOpen(uint256 taskId, Status status);
    error TaskNotAccepted(uint256 taskId, Status status);
    error NotRequester(uint256 taskId, address sender);
    error WrongMachine(uint256 taskId, address machine);
    error BadSignature(uint256 taskId);
    error BatchNotAnchored(address machine, bytes32 batchId);
    error ReportFromFuture(uint64 timestamp);
    error ReportBeforeAcceptance(uint64 timestamp, uint64 acceptedAt);
    error FleetPaused();
    error NotPayeeController(address machine, address sender);
    error ZeroPayee();

    constructor(IERC20 token_, MachineDID did_, FleetPolicy policy_, DataRegistry data_, uint256 minStake_, uint16 slashBps_)
        EIP712("DePAI TaskMarket", "1")
    {
        require(slashBps_ <= 10_000, "slashBps > 100%");
        token = token_;
        did = did_;
        policy = policy_;
        data = data_;
        minStake = minStake_;
        slashBps = slashBps_;
    }

    // ------------------------------------------------------------------ machines

    /// @notice Join the market with `stake` tokens (approve first). Needs the DID attribute
    ///         MACHINE_ATTRIBUTE on the caller's own DID.
    function registerMachine(uint256 stake) external {
        Machine storage m = _machines[msg.sender];
        if (m.registered) revert AlreadyRegistered(msg.sender);
        try did.readAttribute(msg.sender, MACHINE_ATTRIBUTE) returns (MachineDID.Attribute memory) {}
        catch {
            revert NoMachineDid(msg.sender);
        }
        if (stake < minStake) revert StakeTooLow(stake, minStake);
        m.registered = true;
        m.stake = stake;
        token.safeTransferFrom(msg.sender, address(this), stake);
        emit MachineRegistered(msg.sender, stake);
    }

    function addStake(uint256 amount) external {
        Machine storage m = _machines[msg.sender];
        if (!m.registered) revert NotRegistered(msg.sender);
        m.stake += amount;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit StakeChanged(msg.sender, m.stake);
    }

    /// @notice Withdraw stake; not while the machine has accepted tasks (the stake backs them).
    function withdrawStake(uint256 amount) external {
        Machine storage m = _machines[msg.sender];
        if (!m.registered) revert NotRegistered(msg.sender);
        if (m.activeTasks != 0) revert StakeLocked(msg.sender, m.activeTasks);
        if (amount > m.stake) revert StakeTooLow(m.stake, amount);
        m.stake -= amount;
        token.safeTransfer(msg.sender, amount);
        emit StakeChanged(msg.sender, m.stake);
    }

    /// @notice Where `machine`'s earnings go. The machine names its payee once (its owner, or a
    ///         RevenueSplitter of its co-owners); after that only the payee itself may hand the
    ///         right on, so a stolen machine key cannot redirect what the machine earns.
    function setPayee(address machine, address payee) external {
        if (payee == address(0)) revert ZeroPayee();
        address current = _payee[machine];
        if (current == address(0) ? msg.sender != machine : msg.sender != current) {
            revert NotPayeeController(machine, msg.sender);
        }
        _payee[machine] = payee;
        emit PayeeSet(machine, payee);
    }

    function payeeOf(address machine) public view returns (address) {
        address p = _payee[machine];
        return p == address(0) ? machine : p;
    }

    function machineInfo(address machine) external view returns (Machine memory) {
        return _machines[machine];
    }

    // ------------------------------------------------------------------ tasks

    function postTask(int64 goalX, int64 goalY, int64 goalYaw, uint64 deadline, uint256 reward)
        public
        returns (uint256 taskId)
    {
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        uint256 minPrice = policy.minTaskPrice();
        if (reward < minPrice) revert RewardBelowMinimum(reward, minPrice);
        if (_machines[msg.sender].registered) {
            // machines buying work from machines: the DAO caps what one machine spends per day
            uint256 cap = policy.spendingCap();
            uint256 day = block.timestamp / 1 days;
            uint256 would = spentOnDay[msg.sender][day] + reward;
            if (cap != 0 && would > cap) revert SpendingCapExceeded(msg.sender, would, cap);
            spentOnDay[msg.sender][day] = would;
        }
        taskId = ++taskCount;
        _tasks[taskId] = Task({
            requester: msg.sender,
            machine: address(0),
            reward: reward,
            deadline: deadline,
            goalX: goalX,
            goalY: goalY,
            goalYaw: goalYaw,
            status: Status.Open,
            batchId: bytes32(0),
            acceptedAt: 0
        });
        token.safeTransferFrom(msg.sender, address(this), reward);
        emit TaskPosted(taskId, msg.sender, reward, deadline, goalX, goalY, goalYaw);
    }

    /// @notice postTask funded by an EIP-2612 permit instead of a prior approve (one transaction).
    function postTaskWithPermit(
        int64 goalX,
        int64 goalY,
        int64 goalYaw,
        uint64 deadline,
        uint256 reward,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        IERC20Permit(address(token)).permit(msg.sender, address(this), reward, permitDeadline, v, r, s);
        return postTask(goalX, goalY, goalYaw, deadline, reward);
    }

    function cancelTask(uint256 taskId) external {
        Task storage t = _get(taskId);
        if (t.requester != msg.sender) revert NotRequester(taskId, msg.sender);
        if (t.status != Status.Open) revert TaskNotOpen(taskId, t.status);
        t.status = Status.Cancelled;
        token.safeTransfer(t.requester, t.reward);
        emit TaskCancelled(taskId);
    }

    function acceptTask(uint256 taskId) external {
        Task storage t = _get(taskId);
        if (t.status != Status.Open) revert TaskNotOpen(taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        if (policy.paused()) revert FleetPaused();
        Machine storage m = _machines[msg.sender];
        if (!m.registered) revert NotRegistered(msg.sender);
        if (m.stake < minStake) revert StakeTooLow(m.stake, minStake);
        t.machine = msg.sender;
        t.status = Status.Accepted;
        t.acceptedAt = uint64(block.timestamp);
        m.activeTasks += 1;
        emit TaskAccepted(taskId, msg.sender);
    }

    function hashReport(TaskReport calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REPORT_TYPEHASH, r.taskId, r.machine, r.batchId, r.x, r.y, r.timestamp)));
    }

    /// @notice Settle a task with the machine's signed completion report: payout, or slashing
    ///         when the report itself proves a policy violation.
    function completeTask(TaskReport calldata r, bytes calldata signature) external {
        Task storage t = _get(r.taskId);
        if (t.status != Status.Accepted) revert TaskNotAccepted(r.taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(r.taskId, t.deadline);
        if (r.machine != t.machine) revert WrongMachine(r.taskId, r.machine);
        if (r.timestamp > block.timestamp) revert ReportFromFuture(r.timestamp);
        if (r.timestamp < t.acceptedAt) revert ReportBeforeAcceptance(r.timestamp, t.acceptedAt);
        if (!SignatureChecker.isValidSignatureNow(t.machine, hashReport(r), signature)) revert BadSignature(r.taskId);
        if (!data.isAnchored(t.machine, r.batchId)) revert BatchNotAnchored(t.machine, r.batchId);

        Machine storage m = _machines[t.machine];
        m.activeTasks -= 1;
        t.batchId = r.batchId;

        // judged by the rules in force at the report's time: a pause or a zone that came later
        // cannot be held against the machine
        bytes32 violation;
        if (policy.pausedAt(r.timestamp)) {
            violation = "fleet paused";
        } else {
            (bool inside,) = policy.isInKeepOutAt(r.x, r.y, r.timestamp);
            if (inside) violation = "keep-out zone";
        }
        if (violation != bytes32(0)) {
            uint256 amount = (m.stake * slashBps) / 10_000;
            m.stake -= amount;
            t.status = Status.Slashed;
            token.safeTransfer(t.requester, t.reward + amount);
            emit MachineSlashed(r.taskId, t.machine, amount, violation);
            emit StakeChanged(t.machine, m.stake);
            return;
        }
        t.status = Status.Completed;
        _pay(r.taskId, t.machine, t.reward);
        emit TaskCompleted(r.taskId, t.machine, r.batchId, t.reward);
    }

    /// @notice After the deadline, an unfinished task's reward returns to its requester (anyone may call).
    function refund(uint256 taskId) external {
        Task storage t = _get(taskId);
        if (t.status != Status.Open && t.status != Status.Accepted) revert TaskNotAccepted(taskId, t.status);
        if (block.timestamp <= t.deadline) revert DeadlineNotPassed(taskId, t.deadline);
        if (t.status == Status.Accepted) _machines[t.machine].activeTasks -= 1;
        t.status = Status.Refunded;
        token.safeTransfer(t.requester, t.reward);
        emit TaskRefunded(taskId, t.requester, t.reward);
    }

    /// @dev The protocol fee (rounded down) to the treasury, the rest to the machine's payee.
    function _pay(uint256 taskId, address machine, uint256 reward) private {
        uint256 fee = (reward * policy.protocolFeeBps()) / 10_000;
        address treasury = policy.treasury();
        address payee = payeeOf(machine);
        if (fee != 0) token.safeTransfer(treasury, fee);
        token.safeTransfer(payee, reward - fee);
        emit TaskPaid(taskId, payee, reward - fee, treasury, fee);
    }

    function getTask(uint256 taskId) external view returns (Task memory) {
        return _get(taskId);
    }

    function _get(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert TaskNotFound(taskId);
    }
}
