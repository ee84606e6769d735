import Foundation
import Engine
import Imaging

/// A classification data source the trainer can draw batches from.
public protocol BatchSource {
    var count: Int { get }
    var numClasses: Int { get }
    /// A batch for `indices`: images (N, 3, H, W) and labels. Image k's random augmentation comes from its
    /// own stream, `SeededRNG(seed: seeds[k])`, so it does not depend on which other images share the batch.
    /// Items that could not be read are left out (and reported through `skipped`).
    func batch(_ indices: [Int], augment: Bool, seeds: [UInt64]) throws -> (Tensor, [Int], skipped: [String])
}

extension BatchSource {
    /// A batch without augmentation (evaluation).
    public func batch(_ indices: [Int]) throws -> (Tensor, [Int], skipped: [String]) {
        try batch(indices, augment: false, seeds: [UInt64](repeating: 0, count: indices.count))
    }
}

/// CIFAR-10 records as a batch source.
public struct CIFARSource: BatchSource {
    public let data: CIFARDataset
    public let normalization: Normalization
    public init(_ data: CIFARDataset, normalization: Normalization = .cifar10) {
        self.data = data; self.normalization = normalization
    }
    public var count: Int { data.count }
    public var numClasses: Int { data.numClasses }
    public func batch(_ indices: [Int], augment: Bool, seeds: [UInt64]) throws -> (Tensor, [Int], skipped: [String]) {
        let (x, y) = data.batch(indices, normalization: normalization, augment: augment, seeds: seeds)
        return (x, y, [])
    }
}

/// An image folder as a batch source: scale augmentation + random crop + flip for training, resize +
/// centre crop otherwise.
public struct ImageFolderSource: BatchSource {
    public let data: ImageFolderDataset
    public var normalization: Normalization = .imagenet
    public var scaleRange: ClosedRange<Int> = 256...480
    public var crop = 224
    public var testResize = 256
    public var badImages: BadImagePolicy = .skip
    public var maxPixels = ImageIO.defaultMaxPixels

    public init(_ data: ImageFolderDataset) { self.data = data }
    public var count: Int { data.count }
    public var numClasses: Int { data.numClasses }

    public func batch(_ indices: [Int], augment: Bool, seeds: [UInt64]) throws -> (Tensor, [Int], skipped: [String]) {
        precondition(
            seeds.count == indices.count,
            "ImageFolderSource.batch: \(seeds.count) seeds for \(indices.count) images")
        let per = 3 * crop * crop
        let buf = Tensor(uninitialized: [indices.count, 3, crop, crop])
        var kept: [Int] = [], labels: [Int] = [], skipped: [String] = []
        for (k, i) in indices.enumerated() {
            do {
                let img = try ImageIO.read(data.files[i], maxPixels: maxPixels)
                let dst = buf.data + kept.count * per
                if augment {
                    var rng = SeededRNG(seed: seeds[k])
                    try ImageTransforms.trainCrop(
                        img, scaleRange: scaleRange, crop: crop, normalization: normalization, rng: &rng, into: dst)
                } else {
                    let t = try ImageTransforms.testCrops(
                        img, resize: testResize, crop: crop, ten: false, normalization: normalization)
                    dst.update(from: t.data, count: per)
                }
                kept.append(i); labels.append(data.labels[i])
            } catch {
                if badImages == .stop { throw error }
                skipped.append("\(error)")
            }
        }
        if kept.count == indices.count { return (buf, labels, skipped) }
        let out = Tensor(uninitialized: [kept.count, 3, crop, crop])
        out.data.update(from: buf.data, count: kept.count * per)
        return (out, labels, skipped)
    }
}

/// Batches for training: epoch e visits the records in a seeded permutation (or in file order with
/// `shuffle = false`), batch i of the run holds positions [i*B, (i+1)*B) of the concatenated epochs
/// (the last partial batch of an epoch is dropped). The image at position p = i*B + j draws its
/// augmentation from its own stream, seeded by (seed, p), so the loader has no state to save (a run resumed
/// at iteration i draws exactly the same batches) and the images do not depend on how a batch is split:
/// with `shard` (rank r of n) the loader returns the r-th contiguous block of B/n images of each batch.
/// The next batch is prepared on a background thread while the current one trains.
public final class TrainLoader {
    public let source: BatchSource
    public let batchSize: Int
    public let shuffle: Bool
    public let augment: Bool
    public let seed: UInt64
    /// The block of every batch this loader returns (data-parallel training): rank r of n.
    public var shard: (rank: Int, of: Int) = (0, 1)
    public var batchesPerEpoch: Int { source.count / batchSize }
    private var permutations: [Int: [Int]] = [:]
    private let queue = DispatchQueue(label: "loader.prefetch")
    private var pending: (Int, DispatchWorkItem, Box)?

    final class Box { var result: Result<(Tensor, [Int], skipped: [String]), Error>? }

    public init(source: BatchSource, batchSize: Int, shuffle: Bool, augment: Bool, seed: UInt64) throws {
        guard batchSize > 0 else { throw DataError(file: "", "batch size must be positive") }
        guard source.count >= batchSize else {
            throw DataError(file: "", "the data set has \(source.count) images, fewer than one batch of \(batchSize)")
        }
        self.source = source; self.batchSize = batchSize; self.shuffle = shuffle; self.augment = augment;
        self.seed = seed
    }

    /// Record indices of batch `i` (0-based over the whole run).
    public func indices(ofBatch i: Int) -> [Int] {
        let epoch = i / batchesPerEpoch, pos = (i % batchesPerEpoch) * batchSize
        guard shuffle else { return Array(pos..<(pos + batchSize)) }
        let perm: [Int]
        if let p = permutations[epoch] {
            perm = p
        } else {
            var r = SeededRNG(seed: derivedSeed(seed, UInt64(epoch)))
            perm = r.permutation(source.count)
            permutations = [epoch: perm]
        }
        return Array(perm[pos..<(pos + batchSize)])
    }

    /// The positions (within the batch) this loader's shard takes.
    public var shardSlots: Range<Int> {
        let per = batchSize / shard.of
        return shard.rank * per..<(shard.rank + 1) * per
    }

    /// This shard's record indices of batch `i` and each one's augmentation seed.
    private func job(_ i: Int) -> (indices: [Int], seeds: [UInt64]) {
        let all = indices(ofBatch: i), slots = shardSlots
        return (Array(all[slots]), slots.map { derivedSeed(seed, 1 << 42, UInt64(i * batchSize + $0)) })
    }

    private func make(_ i: Int) throws -> (Tensor, [Int], skipped: [String]) {
        let (idx, seeds) = job(i)
        return try source.batch(idx, augment: augment, seeds: seeds)
    }

    /// Batch `i`, and starts preparing batch i + 1 in the background.
    public func batch(_ i: Int) throws -> (Tensor, [Int], skipped: [String]) {
        let result: Result<(Tensor, [Int], skipped: [String]), Error>
        if let (j, item, box) = pending, j == i {
            item.wait()
            result = box.result!
        } else {
            result = Result { try make(i) }
        }
        pending = nil
        let next = i + 1
        let (nextIndices, nextSeeds) = job(next)  // computed here: the permutation cache is not thread-safe
        let box = Box()
        let src = source, aug = augment
        let item = DispatchWorkItem {
            box.result = Result { try src.batch(nextIndices, augment: aug, seeds: nextSeeds) }
        }
        queue.async(execute: item)
        pending = (next, item, box)
        return try result.get()
    }
}
