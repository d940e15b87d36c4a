// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title FleetTimelock
/// @notice OpenZeppelin's TimelockController under the fleet's name so it gets its own artifact:
///         it owns FleetPolicy and executes what FleetGovernor's proposals decided, after
///         `minDelay` seconds.
contract FleetTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
