// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {FleetToken} from "./FleetToken.sol";

/// @title RevenueDistributor
/// @notice Shares revenue among FleetToken holders pro rata to the balance each held at a
///         snapshot block. Anyone funds a distribution (the DAO's treasury by a vote, typically
///         with the protocol fees TaskMarket paid into it); each holder claims its own share,
///         once, whenever it likes: unclaimed shares stay claimable for ever.
/// @dev Shares follow *balances* (FleetToken.getPastBalance), not delegated votes: delegating
///      one's votes to a representative does not hand them one's income, and a holder needs no
///      delegation to be paid. Tokens that belong to no member (the treasury, the market's
///      escrow and stakes, this contract) are excluded: they are left out of the denominator
///      and can never claim. The exclusion list in force when a distribution is created is
///      applied to it (later changes touch only later distributions).
///      A share is floor(balance * amount / eligibleSupply): the shares never sum to more than
///      the amount, and what rounding leaves over (less than one base unit per holder) stays in
///      the contract, visible as `unclaimed(id)` once everyone has claimed.
contract RevenueDistributor is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Distribution {
        IERC20 asset;
        uint48 snapshot; // block whose closing balances count
        address funder;
        uint256 amount; // what the contract received
        uint256 eligibleSupply; // total supply at the snapshot minus the excluded balances
        uint256 claimed;
    }

    uint256 public constant MAX_EXCLUDED = 16;

    FleetToken public immutable shareToken;
    uint256 public distributionCount;
    mapping(address => uint256) public reserved; // asset => amount still owed to holders

    address[] private _excluded;
    mapping(address => bool) public isExcluded;
    mapping(uint256 => Distribution) private _dists;
    mapping(uint256 => mapping(address => bool)) private _claimed;
    mapping(uint256 => mapping(address => bool)) private _excludedFrom; // the exclusions at creation

    event DistributionCreated(
        uint256 indexed id, address indexed asset, uint48 snapshot, uint256 amount, uint256 eligibleSupply, address funder
    );
    event Claimed(uint256 indexed id, address indexed holder, address to, uint256 amount);
    event ExclusionSet(address indexed account, bool excluded);

    error ZeroAmount();
    error FutureSnapshot(uint256 snapshot, uint48 clock);
    error NoEligibleSupply(uint256 snapshot);
    error UnknownDistribution(uint256 id);
    error AlreadyClaimed(uint256 id, address holder);
    error NotEligible(uint256 id, address holder);
    error NothingToClaim(uint256 id, address holder);
    error TooManyExcluded(uint256 max);
    error OwnershipNotRenounceable();

    constructor(FleetToken token_, address initialOwner, address[] memory excluded_) Ownable(initialOwner) {
        shareToken = token_;
        _setExcluded(address(this), true);
        for (uint256 i = 0; i < excluded_.length; i++) {
            _setExcluded(excluded_[i], true);
        }
    }

    // ------------------------------------------------------------------ funding

    /// @notice Share `amount` of `asset` (approve first) among the holders at block `snapshot`,
    ///         which must lie in the past. Returns the distribution id (1, 2, ...).
    function createDistribution(IERC20 asset, uint256 amount, uint48 snapshot) external nonReentrant returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        uint48 clock = shareToken.clock();
        if (snapshot >= clock) revert FutureSnapshot(snapshot, clock);
        uint256 eligible = shareToken.getPastTotalSupply(snapshot);
        for (uint256 i = 0; i < _excluded.length; i++) {
            eligible -= shareToken.getPastBalance(_excluded[i], snapshot);
        }
        if (eligible == 0) revert NoEligibleSupply(snapshot);
        uint256 before = asset.balanceOf(address(this));
        asset.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = asset.balanceOf(address(this)) - before; // what actually arrived
        if (received == 0) revert ZeroAmount();
        id = ++distributionCount;
        _dists[id] = Distribution(asset, snapshot, msg.sender, received, eligible, 0);
        for (uint256 i = 0; i < _excluded.length; i++) {
            _excludedFrom[id][_excluded[i]] = true;
        }
        reserved[address(asset)] += received;
        emit DistributionCreated(id, address(asset), snapshot, received, eligible, msg.sender);
    }

    // ------------------------------------------------------------------ claims

    /// @notice Claim your share of distribution `id` to yourself.
    function claim(uint256 id) external nonReentrant returns (uint256) {
        return _claim(id, msg.sender);
    }

    /// @notice Claim your shares of several distributions, paid to `to` (yourself or e.g. a splitter).
    function claimMany(uint256[] calldata ids, address to) external nonReentrant returns (uint256 total) {
        for (uint256 i = 0; i < ids.length; i++) {
            total += _claim(ids[i], to);
        }
    }

    function _claim(uint256 id, address to) private returns (uint256 share) {
        Distribution storage d = _get(id);
        if (_excludedFrom[id][msg.sender]) revert NotEligible(id, msg.sender);
        if (_claimed[id][msg.sender]) revert AlreadyClaimed(id, msg.sender);
        share = _share(d, msg.sender);
        if (share == 0) revert NothingToClaim(id, msg.sender);
        _claimed[id][msg.sender] = true;
        d.claimed += share;
        reserved[address(d.asset)] -= share;
        d.asset.safeTransfer(to, share);
        emit Claimed(id, msg.sender, to, share);
    }

    // ------------------------------------------------------------------ views

    function distribution(uint256 id) external view returns (Distribution memory) {
        return _get(id);
    }

    /// @notice What `holder` may still claim from distribution `id` (0 once claimed or excluded).
    function claimable(uint256 id, address holder) external view returns (uint256) {
        Distribution storage d = _get(id);
        return (_claimed[id][holder] || _excludedFrom[id][holder]) ? 0 : _share(d, holder);
    }

    function hasClaimed(uint256 id, address holder) external view returns (bool) {
        _get(id);
        return _claimed[id][holder];
    }

    /// @notice Not yet claimed from `id` (after every holder claimed: the rounding dust).
    function unclaimed(uint256 id) external view returns (uint256) {
        Distribution storage d = _get(id);
        return d.amount - d.claimed;
    }

    /// @notice Whether `holder` was on the exclusion list when `id` was created.
    function isExcludedFrom(uint256 id, address holder) external view returns (bool) {
        _get(id);
        return _excludedFrom[id][holder];
    }

    function excluded() external view returns (address[] memory) {
        return _excluded;
    }

    // ------------------------------------------------------------------ governance

    /// @notice Leave `account`'s tokens out of future distributions (or take them back in).
    function setExcluded(address account, bool value) external onlyOwner {
        _setExcluded(account, value);
    }

    function renounceOwnership() public pure override {
        revert OwnershipNotRenounceable();
    }

    // ------------------------------------------------------------------ internals

    function _share(Distribution storage d, address holder) private view returns (uint256) {
        return (shareToken.getPastBalance(holder, d.snapshot) * d.amount) / d.eligibleSupply;
    }

    function _get(uint256 id) private view returns (Distribution storage d) {
        d = _dists[id];
        if (address(d.asset) == address(0)) revert UnknownDistribution(id);
    }

    function _setExcluded(address account, bool value) private {
        if (isExcluded[account] == value) return;
        if (value) {
            if (_excluded.length >= MAX_EXCLUDED) revert TooManyExcluded(MAX_EXCLUDED);
            _excluded.push(account);
        } else {
            for (uint256 i = 0; i < _excluded.length; i++) {
                if (_excluded[i] == account) {
                    _excluded[i] = _excluded[_excluded.length - 1];
                    _excluded.pop();
                    break;
                }
            }
        }
        isExcluded[account] = value;
        emit ExclusionSet(account, value);
    }
}
