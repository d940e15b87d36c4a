// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title MachineDID
/// @notice Machine identity registry with the ABI of peaq's DID precompile
///         (0x0000000000000000000000000000000000000800 on peaq and agung). On peaq the robots
///         call the precompile itself; on a local chain this contract stands in for it at a
///         configurable address, so the same Python bridge code talks to both.
/// @dev Rules: one attribute per (did_account, name); names are 1..64 bytes; only the machine's
///      own account writes its DID. `validity` is the last block at which the attribute is valid
///      (validity_for == 0 means "forever", stored as type(uint32).max); `created` is the
///      timestamp of the last write.
contract MachineDID {
    struct Attribute {
        bytes name;
        bytes value;
        uint32 validity;
        uint256 created;
    }

    uint256 public constant MAX_NAME_LENGTH = 64;
    uint256 public constant MAX_VALUE_LENGTH = 2560;

    mapping(address => mapping(bytes32 => Attribute)) private _attributes;

    event AddAttribute(address sender, address did_account, bytes name, bytes value, uint32 validity);
    event UpdateAttribute(address sender, address did_account, bytes name, bytes value, uint32 validity);
    event RemoveAttribute(address did_account, bytes name);

    error NotDidOwner(address sender, address didAccount);
    error InvalidName(uint256 length);
    error ValueTooLong(uint256 length);
    error AttributeExists(address didAccount, bytes name);
    error AttributeNotFound(address didAccount, bytes name);

    function readAttribute(address did_account, bytes calldata name) external view returns (Attribute memory) {
        Attribute storage a = _attributes[did_account][keccak256(name)];
        if (a.created == 0) revert AttributeNotFound(did_account, name);
        return a;
    }

    function addAttribute(address did_account, bytes calldata name, bytes calldata value, uint32 validity_for)
        external
        returns (bool)
    {
        _check(did_account, name, value);
        Attribute storage a = _attributes[did_account][keccak256(name)];
        if (a.created != 0) revert AttributeExists(did_account, name);
        uint32 validity = _validity(validity_for);
        a.name = name;
        a.value = value;
        a.validity = validity;
        a.created = block.timestamp;
        emit AddAttribute(msg.sender, did_account, name, value, validity);
        return true;
    }

    function updateAttribute(address did_account, bytes calldata name, bytes calldata value, uint32 validity_for)
        external
        returns (bool)
    {
        _check(did_account, name, value);
        Attribute storage a = _attributes[did_account][keccak256(name)];
        if (a.created == 0) revert AttributeNotFound(did_account, name);
        uint32 validity = _validity(validity_for);
        a.value = value;
        a.validity = validity;
        a.created = block.timestamp;
        emit UpdateAttribute(msg.sender, did_account, name, value, validity);
        return true;
    }

    function removeAttribute(address did_account, bytes calldata name) external returns (bool) {
        if (msg.sender != did_account) revert NotDidOwner(msg.sender, did_account);
        bytes32 key = keccak256(name);
        if (_attributes[did_account][key].created == 0) revert AttributeNotFound(did_account, name);
        delete _attributes[did_account][key];
        emit RemoveAttribute(did_account, name);
        return true;
    }

    /// @notice True when the attribute exists and its validity block has not passed.
    function isValid(address did_account, bytes calldata name) external view returns (bool) {
        Attribute storage a = _attributes[did_account][keccak256(name)];
        return a.created != 0 && block.number <= a.validity;
    }

    function _check(address did_account, bytes calldata name, bytes calldata value) private view {
        if (msg.sender != did_account) revert NotDidOwner(msg.sender, did_account);
        if (name.length == 0 || name.length > MAX_NAME_LENGTH) revert InvalidName(name.length);
        if (value.length > MAX_VALUE_LENGTH) revert ValueTooLong(value.length);
    }

    function _validity(uint32 validity_for) private view returns (uint32) {
        if (validity_for == 0) return type(uint32).max;
        uint256 v = block.number + validity_for;
        return v > type(uint32).max ? type(uint32).max : uint32(v);
    }
}
