// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title StreamAnchor
/// @notice Anchors Merkle roots of batches of accepted stream records on-chain, so anyone can
///         later prove that a record was part of an anchored batch.
/// @dev Leaves use the OpenZeppelin `StandardMerkleTree` encoding (double keccak of the ABI
///      encoding) for the types ["bytes32","string","string","bytes32","uint64"], and inner
///      nodes use sorted-pair hashing, as `MerkleProof` expects.
contract StreamAnchor is AccessControl {
    /// @notice Role allowed to anchor batches.
    bytes32 public constant WRITER_ROLE = keccak256("WRITER_ROLE");

    /// @notice An anchored batch.
    /// @param merkleRoot Root of the batch's StandardMerkleTree.
    /// @param recordCount Number of records (leaves) in the batch.
    /// @param anchoredAt Block timestamp of the anchoring transaction.
    /// @param blockNumber Block number of the anchoring transaction.
    struct Batch {
        bytes32 merkleRoot;
        uint32 recordCount;
        uint64 anchoredAt;
        uint64 blockNumber;
    }

    mapping(bytes32 batchId => Batch) private _batches;

    /// @notice A batch was anchored.
    /// @param batchId Batch identifier chosen by the writer.
    /// @param merkleRoot Root of the batch's Merkle tree.
    /// @param recordCount Number of records in the batch.
    /// @param writer Account that anchored the batch.
    event BatchAnchored(
        bytes32 indexed batchId, bytes32 indexed merkleRoot, uint32 recordCount, address indexed writer
    );

    /// @notice The batch id was already anchored; anchors are write-once.
    error BatchAlreadyAnchored(bytes32 batchId);
    /// @notice recordCount was zero.
    error EmptyBatch();
    /// @notice merkleRoot was zero.
    error ZeroMerkleRoot();
    /// @notice batchId was zero.
    error ZeroBatchId();

    /// @notice Deploys the contract and gives `admin` both the admin and the writer role.
    /// @param admin Account receiving DEFAULT_ADMIN_ROLE and WRITER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(WRITER_ROLE, admin);
    }

    /// @notice Anchors the Merkle root of a batch. Each batch id can be anchored once.
    /// @param batchId Nonzero batch identifier.
    /// @param merkleRoot Nonzero StandardMerkleTree root of the batch.
    /// @param recordCount Nonzero number of records in the batch.
    function anchorBatch(bytes32 batchId, bytes32 merkleRoot, uint32 recordCount) external onlyRole(WRITER_ROLE) {
        if (batchId == bytes32(0)) revert ZeroBatchId();
        if (merkleRoot == bytes32(0)) revert ZeroMerkleRoot();
        if (recordCount == 0) revert EmptyBatch();
        Batch storage batch = _batches[batchId];
        if (batch.merkleRoot != bytes32(0)) revert BatchAlreadyAnchored(batchId);

        batch.merkleRoot = merkleRoot;
        batch.recordCount = recordCount;
        batch.anchoredAt = uint64(block.timestamp);
        batch.blockNumber = uint64(block.number);

        emit BatchAnchored(batchId, merkleRoot, recordCount, msg.sender);
    }

    /// @notice Returns an anchored batch (all fields zero if it was never anchored).
    /// @param batchId Batch identifier.
    /// @return The stored batch.
    function getBatch(bytes32 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @notice Whether a batch id has been anchored.
    /// @param batchId Batch identifier.
    /// @return True if the batch was anchored.
    function isAnchored(bytes32 batchId) external view returns (bool) {
        return _batches[batchId].merkleRoot != bytes32(0);
    }

    /// @notice Computes a record's leaf exactly as OpenZeppelin's StandardMerkleTree does for
    ///         the types ["bytes32","string","string","bytes32","uint64"].
    /// @param recordId Record identifier.
    /// @param topic Record topic.
    /// @param subject Record subject.
    /// @param contentHash Hash of the record content.
    /// @param acceptedAt Acceptance time of the record.
    /// @return The leaf hash.
    function leafHash(
        bytes32 recordId,
        string calldata topic,
        string calldata subject,
        bytes32 contentHash,
        uint64 acceptedAt
    ) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(recordId, topic, subject, contentHash, acceptedAt))));
    }

    /// @notice Verifies a Merkle proof for a leaf against an anchored batch's root.
    /// @param batchId Batch identifier.
    /// @param proof Sibling hashes from the leaf up to the root (sorted-pair hashing).
    /// @param leaf Leaf hash, see {leafHash}.
    /// @return False if the batch is not anchored or the proof does not match.
    function verifyLeaf(bytes32 batchId, bytes32[] calldata proof, bytes32 leaf) public view returns (bool) {
        bytes32 root = _batches[batchId].merkleRoot;
        if (root == bytes32(0)) return false;
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice Verifies that a record belongs to an anchored batch.
    /// @param batchId Batch identifier.
    /// @param proof Sibling hashes from the leaf up to the root (sorted-pair hashing).
    /// @param recordId Record identifier.
    /// @param topic Record topic.
    /// @param subject Record subject.
    /// @param contentHash Hash of the record content.
    /// @param acceptedAt Acceptance time of the record.
    /// @return False if the batch is not anchored or the proof does not match.
    function verifyRecord(
        bytes32 batchId,
        bytes32[] calldata proof,
        bytes32 recordId,
        string calldata topic,
        string calldata subject,
        bytes32 contentHash,
        uint64 acceptedAt
    ) external view returns (bool) {
        return verifyLeaf(batchId, proof, leafHash(recordId, topic, subject, contentHash, acceptedAt));
    }
}
