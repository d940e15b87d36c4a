// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {RevenueDistributor} from "./RevenueDistributor.sol";

/// @title RevenueSplitter
/// @notice A co-owned machine's payee: whatever arrives (task payouts, revenue shares) is split
///         among fixed co-owners by fixed shares, each pulling its part when it likes (the pull
///         model of OpenZeppelin 4's PaymentSplitter, which OpenZeppelin 5 no longer ships).
///         Payees and shares are set once, at deployment: no owner, nothing to change.
/// @dev releasable = (balance + totalReleased) * shares / totalShares - released: each co-owner
///      gets exactly its pro rata part of everything ever received, rounded down.
contract RevenueSplitter is ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 public constant MAX_PAYEES = 32;

    uint256 public immutable totalShares;
    address[] private _payees;
    mapping(address => uint256) public shares;
    mapping(IERC20 => uint256) public totalReleased;
    mapping(IERC20 => mapping(address => uint256)) public released;

    event PaymentReleased(address indexed token, address indexed payee, uint256 amount);

    error InvalidPayees(string reason);
    error NotPayee(address account);
    error NothingDue(address account);

    constructor(address[] memory payees_, uint256[] memory shares_) {
        if (payees_.length == 0) revert InvalidPayees("no payees");
        if (payees_.length != shares_.length) revert InvalidPayees("payees and shares differ in length");
        if (payees_.length > MAX_PAYEES) revert InvalidPayees("too many payees");
        uint256 total;
        for (uint256 i = 0; i < payees_.length; i++) {
            address p = payees_[i];
            if (p == address(0)) revert InvalidPayees("zero address");
            if (shares_[i] == 0) revert InvalidPayees("zero share");
            if (shares[p] != 0) revert InvalidPayees("duplicate payee");
            shares[p] = shares_[i];
            _payees.push(p);
            total += shares_[i];
        }
        totalShares = total;
    }

    function payees() external view returns (address[] memory) {
        return _payees;
    }

    function releasable(IERC20 token, address account) public view returns (uint256) {
        uint256 received = token.balanceOf(address(this)) + totalReleased[token];
        return (received * shares[account]) / totalShares - released[token][account];
    }

    /// @notice Pay `account` its due in `token` (anyone may trigger it; it goes to `account`).
    function release(IERC20 token, address account) external nonReentrant returns (uint256 due) {
        if (shares[account] == 0) revert NotPayee(account);
        due = releasable(token, account);
        if (due == 0) revert NothingDue(account);
        released[token][account] += due;
        totalReleased[token] += due;
        token.safeTransfer(account, due);
        emit PaymentReleased(address(token), account, due);
    }

    /// @notice Claim this splitter's revenue shares (it may hold FLEET) into the split.
    function claimRevenue(RevenueDistributor distributor, uint256[] calldata ids) external returns (uint256) {
        return distributor.claimMany(ids, address(this));
    }
}
