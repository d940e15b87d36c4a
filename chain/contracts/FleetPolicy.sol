// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title FleetPolicy
/// @notice The rules the DAO governs for its robots: max speed, keep-out zones (polygons in the
///         map frame), fleet pause (e-stop), minimum task price and a per-machine spending cap.
///         Owned by the fleet's timelock, so every change but one passes a vote. The exception is
///         safety: a guardian (set by the owner) may PAUSE the fleet at once, because an e-stop that
///         waits for a vote is no e-stop; only the owner (a vote) unpauses. The guardian can do
///         nothing else: it cannot unpause, change a rule or name a successor; a vote replaces or
///         revokes it (`setGuardian(0)`), and it may step down itself (`renounceGuardian`).
///         The DAO's protocol fee on task payouts lives here too (`protocolFeeBps`, at most
///         MAX_PROTOCOL_FEE_BPS); it is paid to the treasury, which is this contract's owner.
/// @dev Units follow REP-103 in fixed point so they fit integers: millimetres and mm/s.
///      Every change bumps `version`, records the block, and emits PolicyChanged plus a specific
///      event, so an off-chain listener can re-read the whole policy on any change.
contract FleetPolicy is Ownable {
    struct Zone {
        bytes32 id;
        int64[] xs; // millimetres, map frame
        int64[] ys;
        uint64 since; // timestamp from which the zone is in force (its last set)
    }

    uint256 public constant MAX_ZONES = 32;
    uint256 public constant MAX_VERTICES = 64;
    /// @notice The protocol fee can never exceed 10 % of a payout, whatever a vote decides.
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1000;

    uint64 public version;
    uint64 public updatedAtBlock;
    uint32 public maxSpeedMmPerS;
    bool public paused;
    uint64 public pausedSince; // timestamp the current pause began; 0 while not paused
    uint256 public minTaskPrice;
    uint256 public spendingCap; // per machine per day, token base units; 0 = no cap
    /// @notice The widest arrival tolerance a task may be posted with (mm); the DAO sets it.
    uint32 public maxArrivalToleranceMm = 2000;
    address public guardian;
    uint16 public protocolFeeBps; // share of every TaskMarket payout paid to the treasury

    bytes32[] private _zoneIds;
    mapping(bytes32 => Zone) private _zones;
    mapping(bytes32 => uint256) private _zoneIndexPlusOne;
    /// @dev Every pause that has ended, oldest first: [start, end) in unix seconds. Kept so that a
    ///      report can be judged by a pause that was already lifted when it was settled.
    uint64[2][] private _pastPauses;

    event PolicyChanged(uint64 indexed version, bytes32 indexed what);
    event MaxSpeedSet(uint32 maxSpeedMmPerS);
    event PausedSet(bool paused, address by);
    event MinTaskPriceSet(uint256 minTaskPrice);
    event SpendingCapSet(uint256 spendingCap);
    event MaxArrivalToleranceSet(uint32 maxArrivalToleranceMm);
    event KeepOutZoneSet(bytes32 indexed id, int64[] xs, int64[] ys);
    event KeepOutZoneRemoved(bytes32 indexed id);
    event GuardianSet(address guardian);
    event ProtocolFeeSet(uint16 bps);

    error NotGuardianOrOwner(address sender);
    error InvalidTolerance(uint32 value);
    error InvalidZone(bytes32 id, string reason);
    error TooManyZones(uint256 max);
    error ZoneNotFound(bytes32 id);
    error InvalidSpeed(uint32 value);
    error FeeTooHigh(uint16 bps, uint16 max);
    error NotGuardian(address sender);
    error OwnershipNotRenounceable();

    constructor(address initialOwner, uint32 maxSpeed, uint256 minPrice, uint256 cap) Ownable(initialOwner) {
        if (maxSpeed == 0) revert InvalidSpeed(maxSpeed);
        maxSpeedMmPerS = maxSpeed;
        minTaskPrice = minPrice;
        spendingCap = cap;
        _bump("init");
    }

    // ------------------------------------------------------------------ governed setters

    function setMaxSpeed(uint32 maxSpeed) external onlyOwner {
        if (maxSpeed == 0) revert InvalidSpeed(maxSpeed);
        maxSpeedMmPerS = maxSpeed;
        emit MaxSpeedSet(maxSpeed);
        _bump("maxSpeed");
    }

    /// @notice Pause (e-stop) or unpause the fleet. The guardian may only pause.
    function setPaused(bool value) external {
        if (msg.sender != owner() && !(value && msg.sender == guardian && guardian != address(0))) {
            revert NotGuardianOrOwner(msg.sender);
        }
        if (value && !paused) pausedSince = uint64(block.timestamp);
        if (!value) {
            if (paused) _pastPauses.push([pausedSince, uint64(block.timestamp)]);
            pausedSince = 0;
        }
        paused = value;
        emit PausedSet(value, msg.sender);
        _bump("paused");
    }

    function setMinTaskPrice(uint256 price) external onlyOwner {
        minTaskPrice = price;
        emit MinTaskPriceSet(price);
        _bump("minTaskPrice");
    }

    function setSpendingCap(uint256 cap) external onlyOwner {
        spendingCap = cap;
        emit SpendingCapSet(cap);
        _bump("spendingCap");
    }

    /// @notice The cap on a task's arrival tolerance (mm, >= 1). Tasks posted earlier keep theirs.
    function setMaxArrivalTolerance(uint32 toleranceMm) external onlyOwner {
        if (toleranceMm == 0) revert InvalidTolerance(toleranceMm);
        maxArrivalToleranceMm = toleranceMm;
        emit MaxArrivalToleranceSet(toleranceMm);
        _bump("maxArrivalTolerance");
    }

    function setGuardian(address g) external onlyOwner {
        guardian = g;
        emit GuardianSet(g);
        _bump("guardian");
    }

    /// @notice The guardian steps down (a vote may also revoke it with setGuardian(address(0))).
    function renounceGuardian() external {
        if (msg.sender != guardian || guardian == address(0)) revert NotGuardian(msg.sender);
        guardian = address(0);
        emit GuardianSet(address(0));
        _bump("guardian");
    }

    /// @notice The DAO's cut of every task payout, in basis points (capped by MAX_PROTOCOL_FEE_BPS).
    function setProtocolFee(uint16 bps) external onlyOwner {
        if (bps > MAX_PROTOCOL_FEE_BPS) revert FeeTooHigh(bps, MAX_PROTOCOL_FEE_BPS);
        protocolFeeBps = bps;
        emit ProtocolFeeSet(bps);
        _bump("protocolFee");
    }

    /// @notice Where protocol fees go: the DAO's treasury, i.e. the owner (the timelock).
    function treasury() external view returns (address) {
        return owner();
    }

    /// @notice Rules nobody could ever change again (a paused fleet paused for good): refused.
    function renounceOwnership() public pure override {
        revert OwnershipNotRenounceable();
    }

    /// @notice Add or replace a keep-out polygon (>= 3 vertices, simple polygon expected).
    function setKeepOutZone(bytes32 id, int64[] calldata xs, int64[] calldata ys) external onlyOwner {
        if (id == bytes32(0)) revert InvalidZone(id, "empty id");
        if (xs.length != ys.length) revert InvalidZone(id, "xs and ys differ in length");
        if (xs.length < 3) revert InvalidZone(id, "fewer than 3 vertices");
        if (xs.length > MAX_VERTICES) revert InvalidZone(id, "too many vertices");
        if (_zoneIndexPlusOne[id] == 0) {
            if (_zoneIds.length >= MAX_ZONES) revert TooManyZones(MAX_ZONES);
            _zoneIds.push(id);
            _zoneIndexPlusOne[id] = _zoneIds.length;
        }
        Zone storage z = _zones[id];
        z.id = id;
        z.xs = xs;
        z.ys = ys;
        z.since = uint64(block.timestamp);
        emit KeepOutZoneSet(id, xs, ys);
        _bump("keepOutZone");
    }

    function removeKeepOutZone(bytes32 id) external onlyOwner {
        uint256 idx = _zoneIndexPlusOne[id];
        if (idx == 0) revert ZoneNotFound(id);
        bytes32 last = _zoneIds[_zoneIds.length - 1];
        _zoneIds[idx - 1] = last;
        _zoneIndexPlusOne[last] = idx;
        _zoneIds.pop();
        delete _zoneIndexPlusOne[id];
        delete _zones[id];
        emit KeepOutZoneRemoved(id);
        _bump("keepOutZone");
    }

    // ------------------------------------------------------------------ views

    function zoneIds() external view returns (bytes32[] memory) {
        return _zoneIds;
    }

    function zones() external view returns (Zone[] memory out) {
        out = new Zone[](_zoneIds.length);
        for (uint256 i = 0; i < _zoneIds.length; i++) {
            out[i] = _zones[_zoneIds[i]];
        }
    }

    /// @notice Everything a robot needs in one call (the listener reads it at the change's block).
    function snapshot()
        external
        view
        returns (
            uint64 version_,
            uint64 updatedAtBlock_,
            uint32 maxSpeed_,
            bool paused_,
            uint256 minTaskPrice_,
            uint256 spendingCap_,
            Zone[] memory zones_
        )
    {
        return (version, updatedAtBlock, maxSpeedMmPerS, paused, minTaskPrice, spendingCap, this.zones());
    }

    /// @notice True when (x, y) (millimetres, map frame) lies strictly inside any keep-out zone
    ///         (even-odd rule; points on an edge may go either way).
    function isInKeepOut(int64 x, int64 y) public view returns (bool inside, bytes32 zoneId) {
        return isInKeepOutAt(x, y, type(uint64).max);
    }

    /// @notice Like isInKeepOut, counting only zones already in force at `timestamp`, so a zone
    ///         voted in after a machine finished its task cannot be held against it.
    function isInKeepOutAt(int64 x, int64 y, uint64 timestamp) public view returns (bool inside, bytes32 zoneId) {
        for (uint256 i = 0; i < _zoneIds.length; i++) {
            Zone storage z = _zones[_zoneIds[i]];
            if (z.since <= timestamp && _inside(z.xs, z.ys, x, y)) return (true, z.id);
        }
        return (false, bytes32(0));
    }

    /// @notice Whether the fleet was paused at `timestamp` (by the pause in force now or by one
    ///         already lifted).
    function pausedAt(uint64 timestamp) external view returns (bool) {
        return pausedBetween(timestamp, timestamp);
    }

    /// @notice Whether the fleet was paused at any moment of [from, to] (unix seconds). Scans the
    ///         past pauses newest first and stops at the first that ended before `from`.
    function pausedBetween(uint64 from, uint64 to) public view returns (bool) {
        if (paused && pausedSince <= to) return true;
        for (uint256 i = _pastPauses.length; i > 0; i--) {
            uint64[2] storage p = _pastPauses[i - 1];
            if (p[1] <= from) return false; // ended before the window (and every older one too)
            if (p[0] <= to) return true;
        }
        return false;
    }

    function pastPauseCount() external view returns (uint256) {
        return _pastPauses.length;
    }

    function _inside(int64[] storage xs, int64[] storage ys, int64 px, int64 py) private view returns (bool c) {
        uint256 n = xs.length;
        uint256 j = n - 1;
        for (uint256 i = 0; i < n; i++) {
            int256 xi = xs[i];
            int256 yi = ys[i];
            int256 xj = xs[j];
            int256 yj = ys[j];
            if ((yi > py) != (yj > py)) {
                // x of the edge at height py, compared without division: sign-correct cross-multiply
                int256 lhs = (int256(px) - xi) * (yj - yi);
                int256 rhs = (xj - xi) * (int256(py) - yi);
                if (yj > yi ? lhs < rhs : lhs > rhs) c = !c;
            }
            j = i;
        }
    }

    function _bump(bytes32 what) private {
        version += 1;
        updatedAtBlock = uint64(block.number);
        emit PolicyChanged(version, what);
    }
}
