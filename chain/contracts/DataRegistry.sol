// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title DataRegistry
/// @notice Machines anchor the Merkle root of each telemetry batch here; anyone can then check,
///         on chain, that one message belongs to an anchored batch.
/// @dev The batch is signed by the machine's key (EIP-712), so a relayer (a gateway paying the
///      gas, or the machine itself) can submit it and the record still proves which machine made
///      it. Leaves are keccak256(keccak256(message)) and inner nodes hash their children sorted
///      (OpenZeppelin MerkleProof's convention), which the Python bridge's merkle module follows.
contract DataRegistry is EIP712 {
    struct Batch {
        address machine;
        bytes32 batchId;
        bytes32 root;
        uint64 messageCount;
        uint64 startTime; // unix seconds of the first message
        uint64 endTime; // unix seconds of the last message
        string uri; // where the batch itself is stored (ipfs://, s3://, file://)
    }

    struct Record {
        bytes32 root;
        uint64 messageCount;
        uint64 startTime;
        uint64 endTime;
        uint64 anchoredAt; // block number
        uint64 anchoredTime; // that block's timestamp: the chain's own word on when the batch existed
        address submitter;
        string uri;
    }

    bytes32 public constant BATCH_TYPEHASH = keccak256(
        "Batch(address machine,bytes32 batchId,bytes32 root,uint64 messageCount,uint64 startTime,uint64 endTime,string uri)"
    );

    mapping(address => mapping(bytes32 => Record)) private _records;
    mapping(address => uint256) public batchCount;

    event BatchAnchored(
        address indexed machine,
        bytes32 indexed batchId,
        bytes32 root,
        uint64 messageCount,
        uint64 startTime,
        uint64 endTime,
        string uri
    );

    error BadSignature(address machine);
    error BatchExists(address machine, bytes32 batchId);
    error BatchNotFound(address machine, bytes32 batchId);
    error InvalidBatch(string reason);

    constructor() EIP712("DePAI DataRegistry", "1") {}

    function hashBatch(Batch calldata b) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    BATCH_TYPEHASH,
                    b.machine,
                    b.batchId,
                    b.root,
                    b.messageCount,
                    b.startTime,
                    b.endTime,
                    keccak256(bytes(b.uri))
                )
            )
        );
    }

    /// @notice Anchor one batch, signed by `b.machine` (EOA or ERC-1271 contract wallet).
    function anchor(Batch calldata b, bytes calldata signature) public {
        if (b.root == bytes32(0)) revert InvalidBatch("empty root");
        if (b.messageCount == 0) revert InvalidBatch("no messages");
        if (b.endTime < b.startTime) revert InvalidBatch("end before start");
        if (_records[b.machine][b.batchId].anchoredAt != 0) revert BatchExists(b.machine, b.batchId);
        if (!SignatureChecker.isValidSignatureNow(b.machine, hashBatch(b), signature)) {
            revert BadSignature(b.machine);
        }
        _records[b.machine][b.batchId] = Record({
            root: b.root,
            messageCount: b.messageCount,
            startTime: b.startTime,
            endTime: b.endTime,
            anchoredAt: uint64(block.number),
            anchoredTime: uint64(block.timestamp),
            submitter: msg.sender,
            uri: b.uri
        });
        batchCount[b.machine] += 1;
        emit BatchAnchored(b.machine, b.batchId, b.root, b.messageCount, b.startTime, b.endTime, b.uri);
    }

    /// @notice Anchor several batches in one transaction (a gateway relaying for many machines).
    function anchorMany(Batch[] calldata batches, bytes[] calldata signatures) external {
        if (batches.length != signatures.length) revert InvalidBatch("batches and signatures differ in length");
        for (uint256 i = 0; i < batches.length; i++) {
            anchor(batches[i], signatures[i]);
        }
    }

    function getBatch(address machine, bytes32 batchId) external view returns (Record memory r) {
        r = _records[machine][batchId];
        if (r.anchoredAt == 0) revert BatchNotFound(machine, batchId);
    }

    /// @notice What a proof needs of an anchored batch, without its URI (root 0: not anchored).
    function batchRoot(address machine, bytes32 batchId)
        external
        view
        returns (bytes32 root, uint64 startTime, uint64 endTime, uint64 anchoredTime)
    {
        Record storage r = _records[machine][batchId];
        return (r.root, r.startTime, r.endTime, r.anchoredTime);
    }

    function isAnchored(address machine, bytes32 batchId) external view returns (bool) {
        return _records[machine][batchId].anchoredAt != 0;
    }

    /// @notice Whether `message` (raw bytes) is in the anchored batch, given its Merkle proof.
    function verifyMessage(address machine, bytes32 batchId, bytes calldata message, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return verifyLeaf(machine, batchId, keccak256(bytes.concat(keccak256(message))), proof);
    }

    /// @notice Whether a leaf hash is in the anchored batch, given its Merkle proof.
    function verifyLeaf(address machine, bytes32 batchId, bytes32 leaf, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        Record storage r = _records[machine][batchId];
        if (r.anchoredAt == 0) revert BatchNotFound(machine, batchId);
        return MerkleProof.verifyCalldata(proof, r.root, leaf);
    }
}
