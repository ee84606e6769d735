import Foundation
import Engine
import Imaging

/// A classification data source the trainer can draw batches from.
public protocol BatchSource {
    var count: Int { get }
    var numClasses: Int { get }
    /// A batch for `indices`: images (N, 3, H, W) and labels. Randomness (augmentation) comes from `rng`.
    /// Items that could not be read are left out (and reported through `skipped`).
    func batch(_ indices: [Int], augment: Bool, rng: inout SeededRNG) throws -> (Tensor, [Int], skipped: [String])
}

/// CIFAR-10 records as a batch source.
public struct CIFARSource: BatchSource {
    public let data: CIFARDataset
    public let normalization: Normalization
    public init(_ data: CIFARDataset, normalization: Normalization = .cifar10) { self.data = data; self.normalization = normalization }
    public var count: Int { data.count }
    public var numClasses: Int { data.numClasses }
    public func batch(_ indices: [Int], augment: Bool, rng: inout SeededRNG) throws -> (Tensor, [Int], skipped: [String]) {
        let (x, y) = data.batch(indices, normalization: normalization, augment: augment, rng: &rng)
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

    public func batch(_ indices: [Int], augment: Bool, rng: inout SeededRNG) throws -> (Tensor, [Int], skipped: [String]) {
        let per = 3 * crop * crop
        let buf = Tensor(uninitialized: [indices.count, 3, crop, crop])
        var kept: [Int] = [], labels: [Int] = [], skipped: [String] = []
        for i in indices {
            do {
                let img = try ImageIO.read(data.files[i], maxPixels: maxPixels)
                let dst = buf.data + kept.count * per
                if augment {
                    try ImageTransforms.trainCrop(img, scaleRange: scaleRange, crop: crop, normalization: normalization, rng: &rng, into: dst)
                } else {
                    let t = try ImageTransforms.testCrops(img, resize: testResize, crop: crop, ten: false, normalization: normalization)
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
/// (the last partial batch of an epoch is dropped). All randomness of batch i derives from (seed, i), so
/// the loader has no state to save: a run resumed at iteration i draws exactly the same batches.
/// The next batch is prepared on a background thread while the current one trains.
public final class TrainLoader {
    public let source: BatchSource
    public let batchSize: Int
    public let shuffle: Bool
    public let augment: Bool
    public let seed: UInt64
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
        self.source = source; self.batchSize = batchSize; self.shuffle = shuffle; self.augment = augment; self.seed = seed
    }

    /// Record indices of batch `i` (0-based over the whole run).
    public func indices(ofBatch i: Int) -> [Int] {
        let epoch = i / batchesPerEpoch, pos = (i % batchesPerEpoch) * batchSize
        guard shuffle else { return Array(pos..<(pos + batchSize)) }
        let perm: [Int]
        if let p = permutations[epoch] { perm = p } else {
            var r = SeededRNG(seed: derivedSeed(seed, UInt64(epoch)))
            perm = r.permutation(source.count)
            permutations = [epoch: perm]
        }
        return Array(perm[pos..<(pos + batchSize)])
    }

    private func make(_ i: Int) throws -> (Tensor, [Int], skipped: [String]) {
        var rng = SeededRNG(seed: derivedSeed(seed, 1 << 40, UInt64(i)))
        return try source.batch(indices(ofBatch: i), augment: augment, rng: &rng)
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
        let nextIndices = indices(ofBatch: next)   // computed here: the permutation cache is not thread-safe
        let box = Box()
        let src = source, s = seed, aug = augment
        let item = DispatchWorkItem {
            var rng = SeededRNG(seed: derivedSeed(s, 1 << 40, UInt64(next)))
            box.result = Result { try src.batch(nextIndices, augment: aug, rng: &rng) }
        }
        queue.async(execute: item)
        pending = (next, item, box)
        return try result.get()
    }
}
