// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Script, console2} from "forge-std/Script.sol";
import {StreamAnchor} from "../src/StreamAnchor.sol";

/// @title Deploy
/// @notice Deploys StreamAnchor.
/// @dev Environment:
///      - PRIVATE_KEY (required): deployer key, hex with 0x prefix.
///      - ADMIN (optional): account receiving DEFAULT_ADMIN_ROLE and WRITER_ROLE; defaults to
///        the deployer.
///      Example (from contracts/):
///        PRIVATE_KEY=0x... ADMIN=0x... node_modules/.bin/forge script script/Deploy.s.sol:Deploy \
///          --rpc-url "$RPC_URL" --broadcast
contract Deploy is Script {
    /// @notice Runs the deployment and returns the deployed contract.
    /// @return anchor The deployed StreamAnchor.
    function run() external returns (StreamAnchor anchor) {
        uint256 deployerKey = vm.envUint("PRIVATE_KEY");
        address deployer = vm.addr(deployerKey);
        // envOr would silently fall back to the deployer on a malformed ADMIN; envAddress fails.
        address admin = vm.envExists("ADMIN") && bytes(vm.envString("ADMIN")).length != 0
            ? vm.envAddress("ADMIN")
            : deployer;
        require(admin != address(0), "ADMIN is the zero address");

        vm.startBroadcast(deployerKey);
        anchor = new StreamAnchor(admin);
        vm.stopBroadcast();

        console2.log("StreamAnchor deployed at", address(anchor));
        console2.log("admin (DEFAULT_ADMIN_ROLE + WRITER_ROLE)", admin);
        console2.log("chain id", block.chainid);
    }
}
