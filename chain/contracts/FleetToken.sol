// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title FleetToken
/// @notice The fleet's ERC-20: machines are paid in it, stake it, and its holders vote in the DAO
///         (ERC20Votes, block-number clock) and share its revenue (RevenueDistributor). Permit
///         (EIP-2612) lets a requester fund a task in one transaction. The owner (the timelock,
///         i.e. a DAO vote) may mint; ownership can be handed on but never renounced.
/// @dev Besides ERC20Votes' checkpoints of delegated votes, every account's *balance* is
///      checkpointed on the same clock (`getPastBalance`), so revenue can be shared by what a
///      holder owned at a snapshot, whoever its votes were delegated to, and moving tokens after
///      the snapshot changes nothing.
contract FleetToken is ERC20, ERC20Permit, ERC20Votes, Ownable {
    using Checkpoints for Checkpoints.Trace208;

    mapping(address => Checkpoints.Trace208) private _balanceHistory;

    error OwnershipNotRenounceable();

    constructor(address initialOwner, uint256 initialSupply)
        ERC20("DePAI Fleet Token", "FLEET")
        ERC20Permit("DePAI Fleet Token")
        Ownable(initialOwner)
    {
        _mint(initialOwner, initialSupply);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice The balance `account` held at the end of block `timepoint` (< the current block).
    function getPastBalance(address account, uint256 timepoint) external view returns (uint256) {
        return _balanceHistory[account].upperLookupRecent(_validateTimepoint(timepoint));
    }

    /// @notice A governed token without an owner could never be minted or handed on: refused.
    function renounceOwnership() public pure override {
        revert OwnershipNotRenounceable();
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
        uint48 now_ = clock();
        if (from != address(0)) _balanceHistory[from].push(now_, SafeCast.toUint208(balanceOf(from)));
        if (to != address(0) && to != from) _balanceHistory[to].push(now_, SafeCast.toUint208(balanceOf(to)));
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
