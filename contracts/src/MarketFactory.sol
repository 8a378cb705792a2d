// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketParams} from "./MarketTypes.sol";
import {Market} from "./Market.sol";

/// @title MarketFactory: creates markets and remembers every one of them.
/// @notice `createMarket` validates nothing (see MarketTypes.sol); `creator` in the event is the
/// `creator` field of the params as given, not msg.sender. The full list of markets can be rebuilt
/// from state alone with `marketCount()` and `allMarkets(offset, limit)`.
contract MarketFactory {
    error UnknownMarket(address market);

    event MarketCreated(address indexed market, address indexed creator, MarketParams params);

    address public immutable oracle;
    uint64 public immutable deployedBlock;

    address[] public markets;
    mapping(address => bool) public isMarket;

    constructor(address oracle_) {
        oracle = oracle_;
        deployedBlock = uint64(block.number);
    }

    function createMarket(MarketParams calldata p) external returns (address market) {
        market = address(new Market(oracle, p));
        markets.push(market);
        isMarket[market] = true;
        emit MarketCreated(market, p.creator, p);
    }

    function marketCount() external view returns (uint256) {
        return markets.length;
    }

    /// @notice Markets `[offset, offset + limit)` in creation order, cut at the end of the list.
    function allMarkets(uint256 offset, uint256 limit) external view returns (address[] memory page) {
        uint256 n = markets.length;
        if (offset >= n) return new address[](0);
        uint256 end = limit > n - offset ? n : offset + limit;
        page = new address[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            page[i - offset] = markets[i];
        }
    }

    /// @notice The params of a market made by this factory (reverts for any other address).
    function paramsOf(address market) external view returns (MarketParams memory) {
        if (!isMarket[market]) revert UnknownMarket(market);
        return Market(market).params();
    }
}
