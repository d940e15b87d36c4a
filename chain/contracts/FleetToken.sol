// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title FleetToken
/// @notice The fleet's ERC-20: machines are paid in it, stake it, and its holders vote in the DAO
///         (ERC20Votes, block-number clock). Permit (EIP-2612) lets a requester fund a task in one
///         transaction. The owner (the deployer, then the timelock) may mint.
contract FleetToken is ERC20, ERC20Permit, ERC20Votes, Ownable {
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

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
