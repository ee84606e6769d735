import Foundation

/// The processes of one job and the collective operations the engine and the trainers need. The libraries
/// only see this protocol; the `Cluster` module implements it on MPI, `SingleProcess` is the ordinary
/// one-process run. Every call is collective: all ranks make the same calls in the same order.
public protocol Communicator: AnyObject {
    /// This process's index, 0..<size.
    var rank: Int { get }
    /// Number of processes in the job.
    var size: Int { get }
    /// In-place element-wise sum over all ranks (every rank gets the same result).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Copies `bytes` bytes at `buffer` from rank `root` to every other rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    /// Every rank's bytes, in rank order, on every rank.
    func allGather(_ bytes: [UInt8]) -> [[UInt8]]
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// Sums of small values over all ranks.
    public func sum(_ values: [Double]) -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var v = values
        v.withUnsafeMutableBufferPointer { allReduceSum($0.baseAddress!, count: $0.count) }
        return v
    }

    public func sum(_ value: Double) -> Double { sum([value])[0] }

    /// The contiguous block of `0..<count` this rank works on (blocks differ in length by at most one,
    /// earlier ranks take the longer ones).
    public func block(of count: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let lo = rank * base + min(rank, extra)
        return lo..<lo + base + (rank < extra ? 1 : 0)
    }

    /// `body(k)` for every k of this rank's block of `0..<count`, then every rank's results gathered in
    /// order on every rank: the results of all of `0..<count`, as one process computes them.
    public func gatherBlocks<T: Codable>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
        let mine = try block(of: count).map(body)
        return size > 1 ? Array(try allGather(mine).joined()) : mine
    }

    /// Every rank's `Codable` value, in rank order.
    public func allGather<T: Codable>(_ value: T) throws -> [T] {
        guard size > 1 else { return [value] }
        let parts = allGather([UInt8](try JSONEncoder().encode(value)))
        return try parts.map { try JSONDecoder().decode(T.self, from: Data($0)) }
    }
}

/// The ordinary run: one process, every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
}

/// Synchronised batch norm: when `communicator` is set (by a trainer with `sync_bn`, on any number of ranks,
/// one included), training-mode batch norm computes its batch statistics, and the sums its backward pass needs,
/// over the whole global batch (per-channel sums in Double, one all-reduce each way), so that N ranks of B/N
/// images normalise exactly as one process of B images does.
public enum SyncBatchNorm {
    nonisolated(unsafe) public static var communicator: Communicator? = nil

    static var active: Communicator? { communicator }
}
