// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {StreamAnchor} from "../src/StreamAnchor.sol";

// Cross-check vector produced in JS by the npm package "@openzeppelin/merkle-tree"
// (StandardMerkleTree, leaf types ["bytes32","string","string","bytes32","uint64"], 5 records,
// proof for index 3). Generated once with `cd contracts && npx tsx scripts/merkle-vector.ts`
// (deterministic input; re-run it and paste its output here if the generator changes).
library OzVector {
    bytes32 internal constant ROOT = 0xdd11ee113b5d2d298d4f0dd046994c6ccd73f806e818135f9c7bce93c5808f80;
    bytes32 internal constant LEAF = 0x7254d112c89f546aebcf85234b8dfb142574cc1d0a1ad621f26df7508e50467c;
    bytes32 internal constant RECORD_ID = 0x0000000000000000000000000000000000000000000000000000000000000004;
    string internal constant TOPIC = unicode"topic/beta";
    string internal constant SUBJECT = unicode"subject-3-ünïcødé";
    bytes32 internal constant CONTENT_HASH = 0x73033f23006ba28ad7fdf6117f7338be4208e3736062eec3ea762d72e7202b74;
    uint64 internal constant ACCEPTED_AT = 1700000000003;
    uint32 internal constant RECORD_COUNT = 5;

    function proof() internal pure returns (bytes32[] memory p) {
        p = new bytes32[](2);
        p[0] = 0xb17ae26c9a885543f16d6cbd8ef48179ca143e9f584e82a37ad75903f2c05aba;
        p[1] = 0x591d1b195ce60ec9e6ac146b5dcc57bb7a6d03ecd2feca750b4a3fb5a40c2f21;
    }
}

contract StreamAnchorTest is Test {
    event BatchAnchored(
        bytes32 indexed batchId, bytes32 indexed merkleRoot, uint32 recordCount, address indexed writer
    );

    StreamAnchor internal anchor;
    address internal admin = makeAddr("admin");
    address internal writer = makeAddr("writer");
    address internal stranger = makeAddr("stranger");

    bytes32 internal constant BATCH = keccak256("batch-1");
    bytes32 internal constant ROOT = keccak256("root-1");

    function setUp() public {
        anchor = new StreamAnchor(admin);
        bytes32 writerRole = anchor.WRITER_ROLE();
        vm.prank(admin);
        anchor.grantRole(writerRole, writer);
    }

    // ---------------------------------------------------------------- unit

    function test_constructor_grantsAdminAndWriterRoles() public view {
        assertEq(anchor.WRITER_ROLE(), keccak256("WRITER_ROLE"));
        assertTrue(anchor.hasRole(anchor.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(anchor.hasRole(anchor.WRITER_ROLE(), admin));
        assertFalse(anchor.hasRole(anchor.DEFAULT_ADMIN_ROLE(), writer));
        assertFalse(anchor.hasRole(anchor.WRITER_ROLE(), stranger));
    }

    function test_anchorBatch_emitsBatchAnchored() public {
        vm.expectEmit(true, true, true, true, address(anchor));
        emit BatchAnchored(BATCH, ROOT, 42, writer);
        vm.prank(writer);
        anchor.anchorBatch(BATCH, ROOT, 42);
    }

    function test_anchorBatch_storesBatch() public {
        vm.warp(1_700_000_123);
        vm.roll(987_654);
        vm.prank(writer);
        anchor.anchorBatch(BATCH, ROOT, 42);

        StreamAnchor.Batch memory b = anchor.getBatch(BATCH);
        assertEq(b.merkleRoot, ROOT);
        assertEq(b.recordCount, 42);
        assertEq(b.anchoredAt, 1_700_000_123);
        assertEq(b.blockNumber, 987_654);
        assertTrue(anchor.isAnchored(BATCH));
    }

    function test_unknownBatch_isEmpty() public view {
        assertFalse(anchor.isAnchored(BATCH));
        StreamAnchor.Batch memory b = anchor.getBatch(BATCH);
        assertEq(b.merkleRoot, bytes32(0));
        assertEq(b.recordCount, 0);
        assertEq(b.anchoredAt, 0);
        assertEq(b.blockNumber, 0);
    }

    function test_anchorBatch_revertsOnDuplicate() public {
        vm.startPrank(writer);
        anchor.anchorBatch(BATCH, ROOT, 1);
        vm.expectRevert(abi.encodeWithSelector(StreamAnchor.BatchAlreadyAnchored.selector, BATCH));
        anchor.anchorBatch(BATCH, keccak256("other root"), 2);
        vm.stopPrank();
        // the original anchor is untouched
        assertEq(anchor.getBatch(BATCH).merkleRoot, ROOT);
        assertEq(anchor.getBatch(BATCH).recordCount, 1);
    }

    function test_anchorBatch_revertsForNonWriter() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, anchor.WRITER_ROLE()
            )
        );
        vm.prank(stranger);
        anchor.anchorBatch(BATCH, ROOT, 1);
        assertFalse(anchor.isAnchored(BATCH));
    }

    function test_anchorBatch_revertsOnEmptyBatch() public {
        vm.expectRevert(StreamAnchor.EmptyBatch.selector);
        vm.prank(writer);
        anchor.anchorBatch(BATCH, ROOT, 0);
    }

    function test_anchorBatch_revertsOnZeroMerkleRoot() public {
        vm.expectRevert(StreamAnchor.ZeroMerkleRoot.selector);
        vm.prank(writer);
        anchor.anchorBatch(BATCH, bytes32(0), 1);
    }

    function test_anchorBatch_revertsOnZeroBatchId() public {
        vm.expectRevert(StreamAnchor.ZeroBatchId.selector);
        vm.prank(writer);
        anchor.anchorBatch(bytes32(0), ROOT, 1);
    }

    function test_admin_canGrantAndRevokeWriter() public {
        bytes32 role = anchor.WRITER_ROLE();
        vm.prank(admin);
        anchor.grantRole(role, stranger);
        assertTrue(anchor.hasRole(role, stranger));

        vm.prank(stranger);
        anchor.anchorBatch(BATCH, ROOT, 3);
        assertTrue(anchor.isAnchored(BATCH));

        vm.prank(admin);
        anchor.revokeRole(role, stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        vm.prank(stranger);
        anchor.anchorBatch(keccak256("batch-2"), ROOT, 3);
    }

    function test_nonAdmin_cannotGrantWriter() public {
        bytes32 role = anchor.WRITER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, writer, anchor.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(writer);
        anchor.grantRole(role, stranger);
    }

    function test_verifyLeaf_falseForUnanchoredBatch() public view {
        assertFalse(anchor.verifyLeaf(OzVector.ROOT, OzVector.proof(), OzVector.LEAF));
        assertFalse(anchor.verifyLeaf(bytes32(0), new bytes32[](0), bytes32(0)));
    }

    function test_verifyLeaf_singleLeafBatchWithEmptyProof() public {
        bytes32 leaf = anchor.leafHash(bytes32(uint256(1)), "t", "s", bytes32(uint256(2)), 3);
        vm.prank(writer);
        anchor.anchorBatch(BATCH, leaf, 1);
        assertTrue(anchor.verifyLeaf(BATCH, new bytes32[](0), leaf));
        assertTrue(anchor.verifyRecord(BATCH, new bytes32[](0), bytes32(uint256(1)), "t", "s", bytes32(uint256(2)), 3));
    }

    function test_leafHash_matchesStandardMerkleTreeEncoding() public view {
        bytes32 expected = keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(
                        OzVector.RECORD_ID, OzVector.TOPIC, OzVector.SUBJECT, OzVector.CONTENT_HASH, OzVector.ACCEPTED_AT
                    )
                )
            )
        );
        bytes32 actual = anchor.leafHash(
            OzVector.RECORD_ID, OzVector.TOPIC, OzVector.SUBJECT, OzVector.CONTENT_HASH, OzVector.ACCEPTED_AT
        );
        assertEq(actual, expected);
        assertEq(actual, OzVector.LEAF);
    }

    /// The JS-built StandardMerkleTree vector (see OzVector) verifies on-chain.
    function test_crossCheck_openZeppelinStandardMerkleTreeVector() public {
        bytes32 batchId = keccak256("oz-vector");
        vm.prank(writer);
        anchor.anchorBatch(batchId, OzVector.ROOT, OzVector.RECORD_COUNT);

        bytes32[] memory proof = OzVector.proof();
        assertTrue(
            anchor.verifyRecord(
                batchId,
                proof,
                OzVector.RECORD_ID,
                OzVector.TOPIC,
                OzVector.SUBJECT,
                OzVector.CONTENT_HASH,
                OzVector.ACCEPTED_AT
            )
        );
        assertTrue(anchor.verifyLeaf(batchId, proof, OzVector.LEAF));

        // any changed field, proof node or batch makes it fail
        assertFalse(
            anchor.verifyRecord(
                batchId,
                proof,
                OzVector.RECORD_ID,
                OzVector.TOPIC,
                OzVector.SUBJECT,
                OzVector.CONTENT_HASH,
                OzVector.ACCEPTED_AT + 1
            )
        );
        assertFalse(
            anchor.verifyRecord(
                batchId,
                proof,
                OzVector.RECORD_ID,
                "topic/alpha",
                OzVector.SUBJECT,
                OzVector.CONTENT_HASH,
                OzVector.ACCEPTED_AT
            )
        );
        assertFalse(
            anchor.verifyRecord(
                keccak256("not anchored"),
                proof,
                OzVector.RECORD_ID,
                OzVector.TOPIC,
                OzVector.SUBJECT,
                OzVector.CONTENT_HASH,
                OzVector.ACCEPTED_AT
            )
        );
        proof[1] = bytes32(uint256(proof[1]) ^ 1);
        assertFalse(anchor.verifyLeaf(batchId, proof, OzVector.LEAF));
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_anchorBatch_anyNonzeroInput(bytes32 batchId, bytes32 merkleRoot, uint32 recordCount) public {
        vm.assume(batchId != bytes32(0) && merkleRoot != bytes32(0) && recordCount != 0);

        vm.expectEmit(true, true, true, true, address(anchor));
        emit BatchAnchored(batchId, merkleRoot, recordCount, writer);
        vm.prank(writer);
        anchor.anchorBatch(batchId, merkleRoot, recordCount);

        StreamAnchor.Batch memory b = anchor.getBatch(batchId);
        assertEq(b.merkleRoot, merkleRoot);
        assertEq(b.recordCount, recordCount);
        assertTrue(anchor.isAnchored(batchId));

        vm.expectRevert(abi.encodeWithSelector(StreamAnchor.BatchAlreadyAnchored.selector, batchId));
        vm.prank(writer);
        anchor.anchorBatch(batchId, merkleRoot, recordCount);
    }

    function testFuzz_anchorBatch_nonWriterAlwaysReverts(address caller, bytes32 batchId) public {
        vm.assume(!anchor.hasRole(anchor.WRITER_ROLE(), caller));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, caller, anchor.WRITER_ROLE()
            )
        );
        vm.prank(caller);
        anchor.anchorBatch(batchId, ROOT, 1);
    }

    /// Builds a sorted-pair Merkle tree of 2..16 record leaves in Solidity and checks that the
    /// proof of every leaf verifies and that a foreign leaf does not.
    function testFuzz_verifyRecord_solidityBuiltTree(uint256 seed, uint8 rawCount) public {
        uint256 n = bound(uint256(rawCount), 2, 16);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            (bytes32 id, string memory topic, string memory subject, bytes32 content, uint64 at) = _record(seed, i);
            leaves[i] = anchor.leafHash(id, topic, subject, content, at);
        }
        bytes32 root = _root(leaves);
        bytes32 batchId = keccak256(abi.encode("fuzz-batch", seed));
        vm.prank(writer);
        // casting to 'uint32' is safe because n is bounded to 2..16
        // forge-lint: disable-next-line(unsafe-typecast)
        anchor.anchorBatch(batchId, root, uint32(n));

        for (uint256 i = 0; i < n; i++) {
            (bytes32 id, string memory topic, string memory subject, bytes32 content, uint64 at) = _record(seed, i);
            bytes32[] memory proof = _proof(leaves, i);
            assertTrue(anchor.verifyRecord(batchId, proof, id, topic, subject, content, at), "proof must verify");
            assertFalse(
                anchor.verifyRecord(batchId, proof, id, topic, subject, content, at ^ 1), "tampered record must fail"
            );
        }
        (bytes32 fid, string memory ft, string memory fs, bytes32 fc, uint64 fa) = _record(~seed, 0);
        assertFalse(anchor.verifyRecord(batchId, _proof(leaves, 0), fid, ft, fs, fc, fa), "foreign record must fail");
    }

    // ---------------------------------------------------------------- helpers

    function _record(uint256 seed, uint256 i)
        internal
        pure
        returns (bytes32 id, string memory topic, string memory subject, bytes32 content, uint64 at)
    {
        bytes32 h = keccak256(abi.encode(seed, i));
        id = h;
        topic = string.concat("topic/", vm.toString(uint256(uint8(h[0]))));
        subject = string.concat("subject-", vm.toString(i));
        content = keccak256(abi.encode(h));
        at = uint64(uint256(h) >> 192);
    }

    /// Merkle tree with sorted-pair hashing; an odd node at the end of a layer is promoted.
    function _nextLayer(bytes32[] memory layer) internal pure returns (bytes32[] memory next) {
        next = new bytes32[]((layer.length + 1) / 2);
        for (uint256 i = 0; i < next.length; i++) {
            uint256 l = 2 * i;
            next[i] = l + 1 < layer.length ? Hashes.commutativeKeccak256(layer[l], layer[l + 1]) : layer[l];
        }
    }

    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory layer = leaves;
        while (layer.length > 1) layer = _nextLayer(layer);
        return layer[0];
    }

    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory buf = new bytes32[](8);
        uint256 len;
        bytes32[] memory layer = leaves;
        while (layer.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < layer.length) buf[len++] = layer[sibling];
            layer = _nextLayer(layer);
            index /= 2;
        }
        proof = new bytes32[](len);
        for (uint256 i = 0; i < len; i++) {
            proof[i] = buf[i];
        }
    }
}

// ---------------------------------------------------------------- invariant

/// Drives StreamAnchor with anchors, re-anchors (of already used ids, with other values) and
/// anchors by a non-writer, and remembers the first successful anchor of each id.
contract StreamAnchorHandler is Test {
    StreamAnchor public immutable anchor;
    address public immutable writer;
    address public immutable stranger;

    bytes32[] public ids;
    mapping(bytes32 => StreamAnchor.Batch) public expected;
    uint256 public unexpectedSuccesses;

    constructor(StreamAnchor anchor_, address writer_) {
        anchor = anchor_;
        writer = writer_;
        stranger = makeAddr("invariant-stranger");
    }

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    function anchorNew(uint256 idSeed, bytes32 root, uint32 count, uint32 timeJump) external {
        bytes32 id = keccak256(abi.encode("id", idSeed % 64)); // small pool: collisions are likely
        if (root == bytes32(0)) root = keccak256(abi.encode(idSeed));
        count = uint32(bound(count, 1, type(uint32).max));
        vm.warp(block.timestamp + timeJump % 1 days);
        vm.roll(block.number + 1);

        bool existed = anchor.isAnchored(id);
        vm.prank(writer);
        try anchor.anchorBatch(id, root, count) {
            if (existed) unexpectedSuccesses++;
            ids.push(id);
            expected[id] = StreamAnchor.Batch(root, count, uint64(block.timestamp), uint64(block.number));
        } catch {
            if (!existed) unexpectedSuccesses++;
        }
    }

    function reanchorExisting(uint256 pick, bytes32 root, uint32 count) external {
        if (ids.length == 0) return;
        bytes32 id = ids[pick % ids.length];
        vm.prank(writer);
        try anchor.anchorBatch(id, root == bytes32(0) ? bytes32(uint256(1)) : root, count == 0 ? 1 : count) {
            unexpectedSuccesses++;
        } catch {}
    }

    function anchorAsStranger(bytes32 id, bytes32 root, uint32 count) external {
        vm.prank(stranger);
        try anchor.anchorBatch(id, root, count) {
            unexpectedSuccesses++;
        } catch {}
    }
}

contract StreamAnchorInvariantTest is Test {
    StreamAnchor internal anchor;
    StreamAnchorHandler internal handler;

    function setUp() public {
        address admin = makeAddr("admin");
        anchor = new StreamAnchor(admin);
        handler = new StreamAnchorHandler(anchor, admin);
        targetContract(address(handler));
    }

    /// An anchored batch never changes after its first anchor, and nothing else succeeds.
    function invariant_anchoredBatchesNeverChange() public view {
        assertEq(handler.unexpectedSuccesses(), 0, "a forbidden anchor succeeded");
        uint256 n = handler.idCount();
        for (uint256 i = 0; i < n; i++) {
            bytes32 id = handler.ids(i);
            (bytes32 root, uint32 count, uint64 at, uint64 blockNumber) = handler.expected(id);
            StreamAnchor.Batch memory b = anchor.getBatch(id);
            assertTrue(anchor.isAnchored(id));
            assertEq(b.merkleRoot, root);
            assertEq(b.recordCount, count);
            assertEq(b.anchoredAt, at);
            assertEq(b.blockNumber, blockNumber);
        }
    }

    /// The stranger never gains the writer role.
    function invariant_strangerNeverWriter() public view {
        assertFalse(anchor.hasRole(anchor.WRITER_ROLE(), handler.stranger()));
    }
}
