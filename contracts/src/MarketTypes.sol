// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The on-chain form of protocol/spec.py's MarketSpec. Nested structs mirror the Python models
// one to one, so `protocol/market_abi.py` decodes a MarketCreated log straight into a MarketSpec.
//
// Enumerations are plain uint8 fields, NOT Solidity enums, and the factory validates nothing:
// the runner (MarketSpec) is the one validator, and a test can put an invalid spec on chain to
// exercise the listener's "does not decode" path. The codes:
//   Subject.kind     0 = HL_METRIC, 1 = TOKEN_PRICE
//   Predicate.op     0 = GT, 1 = GTE, 2 = LT, 3 = LTE
//   Window.kind      0 = SNAPSHOT_AT, 1 = WINDOW_SUM, 2 = WINDOW_COUNT

struct Subject {
    uint8 kind;
    string metricId;
    string tokenIdentifier;
    uint8 valueDecimals;
}

struct Predicate {
    uint8 op;
    int256 threshold;
}

struct Window {
    uint8 kind;
    uint64 tStart;
    uint64 tEnd;
}

struct OracleSpec {
    string primarySourceId;
    string fallbackSourceId;
    uint8 roundingDecimals;
}

struct Economics {
    address collateralToken;
    uint16 feeBps;
    uint256 initialLiquidity;
}

struct MarketParams {
    string title;
    string description;
    Subject subject;
    Predicate predicate;
    Window window;
    OracleSpec oracle;
    uint64 cutoffTime;
    address creator;
    Economics economics;
}
