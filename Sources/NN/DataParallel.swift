import Foundation
import Engine

/// Data-parallel training over the ranks of a `Communicator`, the way torch DDP and Horovod do it: every
/// rank holds the whole model, computes the gradient of its share of the global batch (its loss already
/// divided by the global batch), and one in-place sum all-reduce of a flat gradient buffer per optimizer step
/// makes every rank's gradient the gradient of the global batch. Ranks start from rank 0's state.
public final class DataParallel {
    public let communicator: Communicator
    public let module: Module
    public let optimizer: SGD
    /// The flat buffer: every trainable parameter's gradient, then one "has a gradient" flag per parameter.
    private var flat: [Float] = []

    public init(_ module: Module, optimizer: SGD, communicator: Communicator) {
        self.module = module; self.optimizer = optimizer; self.communicator = communicator
    }

    public var isDistributed: Bool { communicator.size > 1 }

    /// The start of a training run: the recipe's engine threads (0 keeps the default), and a global batch that
    /// divides evenly among the `ranks` processes (`key` and `option` name it in the error).
    public static func prepareRun(threads: Int, batch: Int, key: String, option: String, ranks: Int) throws {
        if threads > 0 { Threading.threads = threads }
        guard batch % ranks == 0 else {
            throw DataParallelError(
                "\(key) \(batch) does not divide evenly among \(ranks) processes: give a multiple of "
                    + "\(ranks) (\(option)) or run another number of processes")
        }
    }

    /// Checks that every rank holds the same recipe (`configuration`) and the same weights, buffers and
    /// optimizer state (hashes compared), then copies rank 0's state to every rank. Throws on every rank,
    /// naming the ranks that differ, when they do not match.
    public func start(configuration: String) throws {
        guard isDistributed else { return }
        let mine = [Self.hash(Array(configuration.utf8)), stateHash()]
        let all = try communicator.allGather(mine.map(String.init))
        for (r, h) in all.enumerated() where h[0] != all[0][0] {
            throw DataParallelError(
                "rank \(r) runs another recipe than rank 0 (configuration hash \(h[0]) vs "
                    + "\(all[0][0])): every rank must get the same --config, --set options and "
                    + "command line")
        }
        for (r, h) in all.enumerated() where h[1] != all[0][1] {
            throw DataParallelError(
                "rank \(r) loaded other weights than rank 0 (hash \(h[1]) vs \(all[0][1])): "
                    + "every machine must hold the same checkpoint files at the same paths")
        }
        for t in stateTensors() { communicator.broadcast(UnsafeMutableRawPointer(t.data), bytes: t.count * 4, root: 0) }
    }

    /// Copies rank 0's buffers (batch-norm running statistics) to every rank, as DDP does before each
    /// forward pass: with per-rank batch norm they drift apart, and evaluation and checkpoints use rank 0's.
    public func broadcastBuffers() {
        guard isDistributed else { return }
        for (_, t) in module.namedBuffers() {
            communicator.broadcast(UnsafeMutableRawPointer(t.data), bytes: t.count * 4, root: 0)
        }
    }

    /// Sums every trainable parameter's gradient over the ranks (in place, one all-reduce). A parameter
    /// without a gradient on some ranks counts as zero there; one without a gradient on every rank keeps nil,
    /// so the optimizer skips it exactly as in a single process.
    public func allReduceGradients() {
        guard isDistributed else { return }
        let params = optimizer.parameters
        let total = params.reduce(0) { $0 + $1.count }
        if flat.count != total + params.count { flat = [Float](repeating: 0, count: total + params.count) }
        flat.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            var offset = 0
            for (k, p) in params.enumerated() {
                if let g = p.grad {
                    (base + offset).update(from: g.data, count: p.count); base[total + k] = 1
                } else {
                    (base + offset).update(repeating: 0, count: p.count); base[total + k] = 0
                }
                offset += p.count
            }
            communicator.allReduceSum(base, count: buf.count)
            offset = 0
            for (k, p) in params.enumerated() {
                if base[total + k] > 0 {
                    let g = p.grad ?? Tensor(uninitialized: p.shape)
                    g.data.update(from: base + offset, count: p.count)
                    p.grad = g
                }
                offset += p.count
            }
        }
    }

    /// Parameters, buffers and momentum buffers, in a fixed order.
    private func stateTensors() -> [Tensor] {
        module.namedParameters().map(\.1) + module.namedBuffers().map(\.1) + optimizer.momentumBuffers.compactMap { $0 }
    }

    private func stateHash() -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for t in stateTensors() {
            h = Self.mix(h, UInt64(t.count))
            h = Self.mix(h, Self.hash(UnsafeRawBufferPointer(start: t.data, count: t.count * 4)))
        }
        for b in optimizer.momentumBuffers { h = Self.mix(h, b == nil ? 0 : 1) }
        return h
    }

    private static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        var x = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return x
    }

    /// A 64-bit hash of bytes, 8 at a time (not cryptographic: it tells copies of one file from different files).
    static func hash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { hash($0) }
    }

    static func hash(_ raw: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x84222325CBF29CE4
        let words = raw.count / 8
        for i in 0..<words { h = mix(h, raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        for i in (words * 8)..<raw.count { h = mix(h, UInt64(raw[i])) }
        return mix(h, UInt64(raw.count))
    }
}

public struct DataParallelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
