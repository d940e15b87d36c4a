// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MachineDID} from "./MachineDID.sol";
import {FleetPolicy} from "./FleetPolicy.sol";
import {DataRegistry} from "./DataRegistry.sol";

/// @title TaskMarket
/// @notice Requesters post tasks (a goal pose with an arrival tolerance, a station label, a
///         deadline, a reward escrowed in FleetToken); machines the fleet admitted, with a valid
///         DID and collateral for every task they hold, accept them; the reward is paid only for
///         a PROVEN arrival: a machine-signed (EIP-712) report whose arrival record
///         (task id, machine, pose, time) is a leaf, checked here with a Merkle inclusion proof,
///         of a telemetry batch that this machine anchored in DataRegistry, that covers the
///         arrival time and that no other task cited; and whose pose lies within the task's
///         tolerance of its goal. After the deadline the requester gets the reward back. A report
///         that proves a violation of the fleet policy (the arrival inside a keep-out zone, or
///         while the fleet was paused, at the arrival's time) slashes the machine's stake instead,
///         in favour of the requester.
///         Revenue: the DAO's protocol fee (FleetPolicy.protocolFeeBps, capped there) is taken
///         from every payout and sent to the treasury (FleetPolicy.treasury(), the timelock); the
///         rest goes to the machine's payee, its owner account (a RevenueSplitter for co-owned
///         machines), or to the machine itself while none is set.
/// @dev Time. The arrival time is the machine's word, so it is bounded by chain facts: not before
///      the acceptance (block time), inside the batch's range, not after the batch was anchored
///      (that block's time). The rules are judged at the claimed time; and since the machine could
///      claim an earlier time to slip out from under a pause or zone that began after it, a rule
///      that took force between the claimed time and the anchoring settles nothing: the report is
///      refused (RulesChangedBeforeAnchoring), neither paid nor slashed (the deadline refunds).
///      Anyone may submit a machine-signed report (the requester, a relayer): the signature, not
///      the sender, proves what the machine claimed. Poses are millimetres / milliradians in the
///      map frame.
///      Membership: ADMITTER_ROLE (the fleet owner, and the DAO's timelock) admits and revokes
///      machines; DEFAULT_ADMIN_ROLE (the timelock) grants and revokes ADMITTER_ROLE.
contract TaskMarket is EIP712, AccessControl {
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
        bytes32 batchId; // the anchored batch the completion report cited
        uint64 acceptedAt; // block time of acceptTask; an arrival may not claim an earlier time
        uint32 toleranceMm; // how close to the goal the arrival must be
        bytes32 station; // the goal's station label (UTF-8, zero padded)
    }

    struct Machine {
        bool registered;
        uint32 activeTasks;
        uint256 stake;
    }

    /// @notice What a machine signs to claim a task done: its arrival record (the fields of the
    ///         telemetry leaf) and the batch holding it.
    struct TaskReport {
        uint256 taskId;
        address machine;
        bytes32 batchId;
        int64 x; // mm
        int64 y; // mm
        int64 yaw; // mrad
        uint64 time; // unix seconds of the arrival
    }

    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "TaskReport(uint256 taskId,address machine,bytes32 batchId,int64 x,int64 y,int64 yaw,uint64 time)"
    );
    /// @notice Telemetry's typed arrival leaf (depai_nodes/telemetry/leaves.py).
    bytes32 public constant ARRIVAL_TYPEHASH =
        keccak256("ArrivalRecord(uint256 taskId,address machine,int64 x,int64 y,int64 yaw,uint64 time)");
    bytes32 public constant ADMITTER_ROLE = keccak256("ADMITTER_ROLE");
    /// @notice The DID attribute a machine must hold (valid, unexpired) to register and accept.
    bytes public constant MACHINE_ATTRIBUTE = "depai:machine";
    int64 public constant MAX_YAW_MRAD = 3142;

    IERC20 public immutable token;
    MachineDID public immutable did;
    FleetPolicy public immutable policy;
    DataRegistry public immutable data;
    /// @notice Stake needed to register, and the collateral each accepted task locks.
    uint256 public immutable minStake;
    uint16 public immutable slashBps;

    uint256 public taskCount;
    mapping(uint256 => Task) private _tasks;
    mapping(address => Machine) private _machines;
    mapping(address => bool) public admitted;
    mapping(address => mapping(bytes32 => uint256)) public batchCitedBy; // machine => batch => task id
    mapping(address => mapping(uint256 => uint256)) public spentOnDay; // requester => day => amount
    mapping(address => address) private _payee; // machine => where its earnings go (0: itself)

    event MachineAdmitted(address indexed machine, address by);
    event MachineRevoked(address indexed machine, address by);
    event MachineRegistered(address indexed machine, uint256 stake);
    event StakeChanged(address indexed machine, uint256 stake);
    event TaskPosted(
        uint256 indexed taskId,
        address indexed requester,
        uint256 reward,
        uint64 deadline,
        int64 goalX,
        int64 goalY,
        int64 goalYaw,
        uint32 toleranceMm,
        bytes32 station
    );
    event TaskAccepted(uint256 indexed taskId, address indexed machine);
    event TaskCompleted(uint256 indexed taskId, address indexed machine, bytes32 batchId, uint256 reward);
    event TaskRefunded(uint256 indexed taskId, address indexed requester, uint256 reward);
    event TaskCancelled(uint256 indexed taskId);
    event TaskPaid(uint256 indexed taskId, address indexed payee, uint256 amount, address treasury, uint256 fee);
    event PayeeSet(address indexed machine, address indexed payee);
    event MachineSlashed(uint256 indexed taskId, address indexed machine, uint256 amount, bytes32 reason);

    error NotAdmitted(address machine);
    error NoMachineDid(address machine);
    error DidExpired(address machine, uint32 validity);
    error AlreadyRegistered(address machine);
    error NotRegistered(address machine);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error StakeLocked(address machine, uint32 activeTasks);
    error CollateralTooLow(address machine, uint256 stake, uint256 required);
    error RewardBelowMinimum(uint256 reward, uint256 minTaskPrice);
    error SpendingCapExceeded(address requester, uint256 wouldSpend, uint256 cap);
    error ToleranceOutOfRange(uint32 toleranceMm, uint32 maxToleranceMm);
    error InvalidGoalYaw(int64 goalYaw);
    error GoalInKeepOut(bytes32 zoneId);
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
    error BatchAlreadyCited(address machine, bytes32 batchId, uint256 taskId);
    error ArrivalNotInBatch(uint256 taskId, bytes32 batchId);
    error ReportFromFuture(uint64 time);
    error ReportBeforeAcceptance(uint64 time, uint64 acceptedAt);
    error ArrivalOutsideBatch(uint64 time, uint64 startTime, uint64 endTime);
    error ArrivalAfterAnchoring(uint64 time, uint64 anchoredTime);
    error ArrivalTooFar(uint256 taskId, int64 x, int64 y, uint32 toleranceMm);
    error RulesChangedBeforeAnchoring(uint64 time, uint64 anchoredTime, bytes32 rule);
    error FleetPaused();
    error NotPayeeController(address machine, address sender);
    error ZeroPayee();

    /// @param dao_ the fleet's timelock: DEFAULT_ADMIN_ROLE and ADMITTER_ROLE
    /// @param fleetOwner_ may admit and revoke machines too (ADMITTER_ROLE); 0: only the DAO
    constructor(
        IERC20 token_,
        MachineDID did_,
        FleetPolicy policy_,
        DataRegistry data_,
        uint256 minStake_,
        uint16 slashBps_,
        address dao_,
        address fleetOwner_
    ) EIP712("DePAI TaskMarket", "1") {
        require(slashBps_ <= 10_000, "slashBps > 100%");
        require(dao_ != address(0), "no DAO");
        token = token_;
        did = did_;
        policy = policy_;
        data = data_;
        minStake = minStake_;
        slashBps = slashBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, dao_);
        _grantRole(ADMITTER_ROLE, dao_);
        if (fleetOwner_ != address(0)) _grantRole(ADMITTER_ROLE, fleetOwner_);
    }

    // ------------------------------------------------------------------ membership

    /// @notice Admit machines to the fleet (the fleet owner or a DAO vote).
    function admitMachines(address[] calldata machines) external onlyRole(ADMITTER_ROLE) {
        for (uint256 i = 0; i < machines.length; i++) {
            if (!admitted[machines[i]]) {
                admitted[machines[i]] = true;
                emit MachineAdmitted(machines[i], msg.sender);
            }
        }
    }

    /// @notice Revoke a machine's membership: it accepts nothing more (tasks it holds can still
    ///         be settled, its stake withdrawn when they are).
    function revokeMachine(address machine) external onlyRole(ADMITTER_ROLE) {
        if (admitted[machine]) {
            admitted[machine] = false;
            emit MachineRevoked(machine, msg.sender);
        }
    }

    function _checkMember(address machine) private view {
        if (!admitted[machine]) revert NotAdmitted(machine);
        try did.readAttribute(machine, MACHINE_ATTRIBUTE) returns (MachineDID.Attribute memory a) {
            if (block.number > a.validity) revert DidExpired(machine, a.validity);
        } catch {
            revert NoMachineDid(machine);
        }
    }

    // ------------------------------------------------------------------ machines

    /// @notice Join the market with `stake` tokens (approve first): admitted machines with a
    ///         valid MACHINE_ATTRIBUTE on their own DID only.
    function registerMachine(uint256 stake) external {
        Machine storage m = _machines[msg.sender];
        if (m.registered) revert AlreadyRegistered(msg.sender);
        _checkMember(msg.sender);
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

    /// @notice Withdraw stake; what the accepted tasks lock (minStake each) stays.
    function withdrawStake(uint256 amount) external {
        Machine storage m = _machines[msg.sender];
        if (!m.registered) revert NotRegistered(msg.sender);
        if (amount > m.stake) revert StakeTooLow(m.stake, amount);
        if (m.stake - amount < uint256(m.activeTasks) * minStake) revert StakeLocked(msg.sender, m.activeTasks);
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

    /// @notice Post a task: goal (mm, mm, mrad), arrival tolerance (mm, 1..the DAO's cap), a
    ///         deadline, a reward (escrowed now; approve first) and a station label.
    function postTask(
        int64 goalX,
        int64 goalY,
        int64 goalYaw,
        uint32 toleranceMm,
        uint64 deadline,
        uint256 reward,
        bytes32 station
    ) public returns (uint256 taskId) {
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        _checkGoal(goalX, goalY, goalYaw, toleranceMm);
        _checkPrice(reward);
        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.reward = reward;
        t.deadline = deadline;
        t.goalX = goalX;
        t.goalY = goalY;
        t.goalYaw = goalYaw;
        t.status = Status.Open;
        t.toleranceMm = toleranceMm;
        t.station = station;
        token.safeTransferFrom(msg.sender, address(this), reward);
        _emitPosted(taskId, t);
    }

    function _checkGoal(int64 goalX, int64 goalY, int64 goalYaw, uint32 toleranceMm) private view {
        uint32 maxTol = policy.maxArrivalToleranceMm();
        if (toleranceMm == 0 || toleranceMm > maxTol) revert ToleranceOutOfRange(toleranceMm, maxTol);
        if (goalYaw > MAX_YAW_MRAD || goalYaw < -MAX_YAW_MRAD) revert InvalidGoalYaw(goalYaw);
        (bool inside, bytes32 zone) = policy.isInKeepOut(goalX, goalY);
        if (inside) revert GoalInKeepOut(zone);
    }

    function _checkPrice(uint256 reward) private {
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
    }

    function _emitPosted(uint256 taskId, Task storage t) private {
        emit TaskPosted(taskId, t.requester, t.reward, t.deadline, t.goalX, t.goalY, t.goalYaw, t.toleranceMm, t.station);
    }

    /// @notice postTask funded by an EIP-2612 permit instead of a prior approve (one transaction).
    function postTaskWithPermit(
        int64 goalX,
        int64 goalY,
        int64 goalYaw,
        uint32 toleranceMm,
        uint64 deadline,
        uint256 reward,
        bytes32 station,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256) {
        IERC20Permit(address(token)).permit(msg.sender, address(this), reward, permitDeadline, v, r, s);
        return postTask(goalX, goalY, goalYaw, toleranceMm, deadline, reward, station);
    }

    function cancelTask(uint256 taskId) external {
        Task storage t = _get(taskId);
        if (t.requester != msg.sender) revert NotRequester(taskId, msg.sender);
        if (t.status != Status.Open) revert TaskNotOpen(taskId, t.status);
        t.status = Status.Cancelled;
        token.safeTransfer(t.requester, t.reward);
        emit TaskCancelled(taskId);
    }

    /// @notice Take an open task. The caller must be an admitted, registered machine with a
    ///         valid DID whose stake covers minStake for each task it holds, this one included.
    function acceptTask(uint256 taskId) external {
        Task storage t = _get(taskId);
        if (t.status != Status.Open) revert TaskNotOpen(taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        if (policy.paused()) revert FleetPaused();
        Machine storage m = _machines[msg.sender];
        if (!m.registered) revert NotRegistered(msg.sender);
        _checkMember(msg.sender);
        uint256 required = (uint256(m.activeTasks) + 1) * minStake;
        if (m.stake < required) revert CollateralTooLow(msg.sender, m.stake, required);
        (bool inside, bytes32 zone) = policy.isInKeepOut(t.goalX, t.goalY);
        if (inside) revert GoalInKeepOut(zone);
        t.machine = msg.sender;
        t.status = Status.Accepted;
        t.acceptedAt = uint64(block.timestamp);
        m.activeTasks += 1;
        emit TaskAccepted(taskId, msg.sender);
    }

    function hashReport(TaskReport calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(REPORT_TYPEHASH, r.taskId, r.machine, r.batchId, r.x, r.y, r.yaw, r.time))
        );
    }

    /// @notice The telemetry leaf of the report's arrival record (OpenZeppelin's double hash).
    function arrivalLeaf(TaskReport calldata r) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(ARRIVAL_TYPEHASH, r.taskId, r.machine, r.x, r.y, r.yaw, r.time))));
    }

    /// @notice Settle a task with the machine's signed report and the Merkle proof of its arrival
    ///         record: payout, or slashing when the arrival itself proves a policy violation.
    function completeTask(TaskReport calldata r, bytes32[] calldata proof, bytes calldata signature) external {
        Task storage t = _get(r.taskId);
        if (t.status != Status.Accepted) revert TaskNotAccepted(r.taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(r.taskId, t.deadline);
        if (r.machine != t.machine) revert WrongMachine(r.taskId, r.machine);
        if (!SignatureChecker.isValidSignatureNow(t.machine, hashReport(r), signature)) revert BadSignature(r.taskId);

        uint64 anchoredTime = _checkArrival(t, r, proof);
        bytes32 violation = _judge(r, anchoredTime);

        Machine storage m = _machines[t.machine];
        m.activeTasks -= 1;
        t.batchId = r.batchId;
        batchCitedBy[t.machine][r.batchId] = r.taskId;
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

    /// @dev The proof (a leaf of a batch THIS machine anchored, cited by no other task), the
    ///      claimed time bounded by chain facts, the pose within the tolerance. Returns the
    ///      batch's anchoring time.
    function _checkArrival(Task storage t, TaskReport calldata r, bytes32[] calldata proof)
        private
        view
        returns (uint64 anchoredTime)
    {
        bytes32 root;
        uint64 start;
        uint64 end;
        (root, start, end, anchoredTime) = data.batchRoot(t.machine, r.batchId);
        if (root == bytes32(0)) revert BatchNotAnchored(t.machine, r.batchId);
        uint256 cited = batchCitedBy[t.machine][r.batchId];
        if (cited != 0) revert BatchAlreadyCited(t.machine, r.batchId, cited);
        if (!MerkleProof.verifyCalldata(proof, root, arrivalLeaf(r))) revert ArrivalNotInBatch(r.taskId, r.batchId);
        if (r.time > block.timestamp) revert ReportFromFuture(r.time);
        if (r.time < t.acceptedAt) revert ReportBeforeAcceptance(r.time, t.acceptedAt);
        if (r.time < start || r.time > end) revert ArrivalOutsideBatch(r.time, start, end);
        if (r.time > anchoredTime) revert ArrivalAfterAnchoring(r.time, anchoredTime);
        int256 dx = int256(r.x) - int256(t.goalX);
        int256 dy = int256(r.y) - int256(t.goalY);
        int256 tol = int256(uint256(t.toleranceMm));
        if (dx * dx + dy * dy > tol * tol) revert ArrivalTooFar(r.taskId, r.x, r.y, t.toleranceMm);
    }

    /// @dev The rules in force at the claimed arrival time (a violation: the slashing reason). A
    ///      rule that took force after the claimed time but before the anchoring cannot be escaped
    ///      by that claim: nothing is settled (RulesChangedBeforeAnchoring).
    function _judge(TaskReport calldata r, uint64 anchoredTime) private view returns (bytes32) {
        if (policy.pausedAt(r.time)) return "fleet paused";
        (bool inside,) = policy.isInKeepOutAt(r.x, r.y, r.time);
        if (inside) return "keep-out zone";
        if (policy.pausedBetween(r.time, anchoredTime)) {
            revert RulesChangedBeforeAnchoring(r.time, anchoredTime, "fleet paused");
        }
        (bool later,) = policy.isInKeepOutAt(r.x, r.y, anchoredTime);
        if (later) revert RulesChangedBeforeAnchoring(r.time, anchoredTime, "keep-out zone");
        return bytes32(0);
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

    /// @notice Tasks fromId .. fromId+count-1 (as many as exist), in one call.
    function getTasks(uint256 fromId, uint256 count) external view returns (Task[] memory out) {
        if (fromId == 0) fromId = 1;
        if (count == 0 || fromId > taskCount) return new Task[](0);
        uint256 last = count > taskCount - fromId ? taskCount : fromId + count - 1;
        out = new Task[](last - fromId + 1);
        for (uint256 i = fromId; i <= last; i++) {
            out[i - fromId] = _tasks[i];
        }
    }

    function _get(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert TaskNotFound(taskId);
    }
}
