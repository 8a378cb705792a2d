// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IMarket {
    function ingestResolution(uint8 outcome, bytes32 dataHash) external;
}

/// @title SimpleOracle: commit an outcome, wait out the dispute window, finalize.
/// @notice Allowed resolvers `commit` once per market; after `disputeWindow` seconds of chain time
/// ANYONE may `finalize`, which writes the outcome into the market; `commitBatch` and
/// `finalizeBatch` do either for many markets in one transaction, all or nothing. There is no
/// dispute mechanism in this reference contract: the window is only a delay. Every revert is a
/// custom error, decoded with this contract's ABI (e.g. `AlreadyCommitted(market)`).
contract SimpleOracle {
    error NotOwner(address caller);
    error NotResolver(address caller);
    error ZeroAddress();
    error InvalidOutcome(uint8 outcome);
    error AlreadyCommitted(address market);
    error NotCommitted(address market);
    error AlreadyFinalized(address market);
    error DisputeWindowOpen(address market, uint64 readyAt);
    error LengthMismatch(uint256 markets, uint256 outcomes, uint256 dataHashes);

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event ResolverSet(address indexed resolver, bool allowed);
    event Committed(address indexed market, uint8 outcome, bytes32 dataHash, address resolver);
    event Finalized(address indexed market, uint8 outcome, bytes32 dataHash);

    struct Resolution {
        uint8 outcome;
        bytes32 dataHash;
        uint64 commitTime;
        bool committed;
        bool finalized;
        address resolver;
    }

    address public owner;
    uint64 public immutable disputeWindow;
    mapping(address => bool) public isResolver;
    mapping(address => Resolution) private _resolutions;

    constructor(uint64 disputeWindow_) {
        owner = msg.sender;
        disputeWindow = disputeWindow_;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setResolver(address resolver, bool allowed) external onlyOwner {
        if (resolver == address(0)) revert ZeroAddress();
        isResolver[resolver] = allowed;
        emit ResolverSet(resolver, allowed);
    }

    /// @notice Commit `outcome` (0 = NO, 1 = YES) for `market`, once; starts the dispute window.
    function commit(address market, uint8 outcome, bytes32 dataHash) external {
        if (!isResolver[msg.sender]) revert NotResolver(msg.sender);
        _commit(market, outcome, dataHash);
    }

    /// @notice `commit` for every `markets[i]` in one transaction, all or nothing: one market
    /// that cannot be committed reverts them all with its reason, so a successful receipt
    /// proves that every market holds exactly the outcome and hash given here.
    function commitBatch(
        address[] calldata markets,
        uint8[] calldata outcomes,
        bytes32[] calldata dataHashes
    ) external {
        if (!isResolver[msg.sender]) revert NotResolver(msg.sender);
        if (outcomes.length != markets.length || dataHashes.length != markets.length) {
            revert LengthMismatch(markets.length, outcomes.length, dataHashes.length);
        }
        for (uint256 i = 0; i < markets.length; ++i) {
            _commit(markets[i], outcomes[i], dataHashes[i]);
        }
    }

    /// @notice Anyone may finalize once `block.timestamp >= commitTime + disputeWindow`.
    function finalize(address market) external {
        _finalize(market);
    }

    /// @notice `finalize` for every `markets[i]` in one transaction, all or nothing.
    function finalizeBatch(address[] calldata markets) external {
        for (uint256 i = 0; i < markets.length; ++i) {
            _finalize(markets[i]);
        }
    }

    function _commit(address market, uint8 outcome, bytes32 dataHash) private {
        if (outcome > 1) revert InvalidOutcome(outcome);
        Resolution storage r = _resolutions[market];
        if (r.committed) revert AlreadyCommitted(market);
        r.outcome = outcome;
        r.dataHash = dataHash;
        r.commitTime = uint64(block.timestamp);
        r.committed = true;
        r.resolver = msg.sender;
        emit Committed(market, outcome, dataHash, msg.sender);
    }

    function _finalize(address market) private {
        Resolution storage r = _resolutions[market];
        if (!r.committed) revert NotCommitted(market);
        if (r.finalized) revert AlreadyFinalized(market);
        uint64 readyAt = r.commitTime + disputeWindow;
        if (block.timestamp < readyAt) revert DisputeWindowOpen(market, readyAt);
        r.finalized = true;
        IMarket(market).ingestResolution(r.outcome, r.dataHash);
        emit Finalized(market, r.outcome, r.dataHash);
    }

    /// @notice The resolution state of `market`; all zero when nothing was committed.
    function pending(address market)
        external
        view
        returns (uint8 outcome, bytes32 dataHash, uint64 commitTime, bool committed, bool finalized)
    {
        Resolution storage r = _resolutions[market];
        return (r.outcome, r.dataHash, r.commitTime, r.committed, r.finalized);
    }

    /// @notice The resolver that committed for `market` (zero when none).
    function committer(address market) external view returns (address) {
        return _resolutions[market].resolver;
    }
}
