// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketParams} from "./MarketTypes.sol";

/// @title Market: a minimal reference market that only stores its question and its answer.
/// @notice Deployed by MarketFactory. The oracle, and only the oracle, writes the resolution, once.
/// Reverts are custom errors (decode them with this contract's ABI).
contract Market {
    error NotOracle(address caller);
    error AlreadyResolved();
    error InvalidOutcome(uint8 outcome);

    event Resolved(uint8 outcome, bytes32 dataHash);

    address public immutable oracle;
    address public immutable factory;
    uint64 public immutable createdBlock;

    MarketParams private _params;
    bool public resolved;
    uint8 public outcome;
    bytes32 public dataHash;

    constructor(address oracle_, MarketParams memory p) {
        oracle = oracle_;
        factory = msg.sender;
        createdBlock = uint64(block.number);
        _params = p;
    }

    /// @notice The market's spec, exactly as given to the factory.
    function params() external view returns (MarketParams memory) {
        return _params;
    }

    /// @notice Record the outcome (0 = NO, 1 = YES) and the hash of the data that proves it.
    function ingestResolution(uint8 outcome_, bytes32 dataHash_) external {
        if (msg.sender != oracle) revert NotOracle(msg.sender);
        if (resolved) revert AlreadyResolved();
        if (outcome_ > 1) revert InvalidOutcome(outcome_);
        resolved = true;
        outcome = outcome_;
        dataHash = dataHash_;
        emit Resolved(outcome_, dataHash_);
    }
}
