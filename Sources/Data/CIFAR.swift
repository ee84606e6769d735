import Foundation
import Engine

/// CIFAR-10 in its binary format: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B,
/// each 32x32 row-major), in `data_batch_1.bin` ... `data_batch_5.bin` and `test_batch.bin`.
public struct CIFARDataset: Sendable {
    public static let recordSize = 3073
    public let pixels: [UInt8]  // (count, 3, 32, 32)
    public let labels: [Int]
    public let numClasses: Int
    public var count: Int { labels.count }

    public init(pixels: [UInt8], labels: [Int], numClasses: Int = 10) {
        self.pixels = pixels; self.labels = labels; self.numClasses = numClasses
    }

    /// Reads one or more binary files in order.
    public init(files: [URL], numClasses: Int = 10) throws {
        var px: [UInt8] = [], lb: [Int] = []
        for url in files {
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw DataError(file: url.path, "cannot read CIFAR file (\((error as NSError).localizedDescription))")
            }
            guard !data.isEmpty else { throw DataError(file: url.path, "empty file, expected CIFAR-10 binary records") }
            guard data.count % Self.recordSize == 0 else {
                throw DataError(
                    file: url.path,
                    "size \(data.count) bytes is not a multiple of the 3073-byte CIFAR-10 record (truncated or not "
                    + "CIFAR-10 binary)"
                )
            }
            let n = data.count / Self.recordSize
            px.reserveCapacity(px.count + n * 3072)
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let b = raw.bindMemory(to: UInt8.self)
                for r in 0..<n {
                    let label = Int(b[r * Self.recordSize])
                    guard label < numClasses else {
                        throw DataError(file: url.path, "record \(r) has label \(label), outside 0..<\(numClasses)")
                    }
                    lb.append(label)
                    px.append(contentsOf: b[(r * Self.recordSize + 1)..<((r + 1) * Self.recordSize)])
                }
            }
        }
        self.init(pixels: px, labels: lb, numClasses: numClasses)
    }

    /// The standard files in a `cifar-10-batches-bin` folder: training (optionally without its last
    /// `validation` records) and test.
    public static func standard(folder: URL, train: Bool) throws -> CIFARDataset {
        let names = train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
        let urls = names.map { folder.appendingPathComponent($0) }
        for u in urls where !FileManager.default.fileExists(atPath: u.path) {
            throw DataError(
                file: u.path,
                "missing CIFAR-10 file (expected the cifar-10-batches-bin layout: data_batch_1..5.bin, test_batch.bin)")
        }
        return try CIFARDataset(files: urls)
    }

    /// Records [range) as a new data set (for the 45k/5k train/validation split).
    public func subset(_ range: Range<Int>) -> CIFARDataset {
        CIFARDataset(
            pixels: Array(pixels[(range.lowerBound * 3072)..<(range.upperBound * 3072)]),
            labels: Array(labels[range]), numClasses: numClasses)
    }

    /// Writes records in the binary format (for generated data sets and tests).
    public static func write(pixels: [UInt8], labels: [Int], to url: URL) throws {
        var d = Data(capacity: labels.count * recordSize)
        for (i, l) in labels.enumerated() {
            d.append(UInt8(l))
            d.append(contentsOf: pixels[(i * 3072)..<((i + 1) * 3072)])
        }
        try d.write(to: url, options: .atomic)
    }

    /// A batch of records as normalised floats (N, 3, 32, 32). With `augment`: zero-pad 4 pixels (black,
    /// as torchvision's RandomCrop(32, padding=4)), take a random 32x32 crop and flip horizontally with
    /// probability 0.5, image k drawing from its own stream `SeededRNG(seed: seeds[k])`.
    public func batch(
        _ indices: [Int], normalization: Normalization, augment: Bool,
        seeds: [UInt64]
    ) -> (Tensor, [Int]) {
        precondition(
            !augment || seeds.count == indices.count,
            "CIFARDataset.batch: \(seeds.count) seeds for \(indices.count) images")
        let x = Tensor(uninitialized: [indices.count, 3, 32, 32])
        var params: [(dx: Int, dy: Int, flip: Bool)] = []
        for k in indices.indices {
            if augment {
                var rng = SeededRNG(seed: seeds[k])
                params.append((rng.int(below: 9) - 4, rng.int(below: 9) - 4, rng.int(below: 2) == 1))
            } else {
                params.append((0, 0, false))
            }
        }
        let std = normalization.std, mean = normalization.mean
        pixels.withUnsafeBufferPointer { px in
            Threading.parallelFor(indices.count, minPerThread: 16) { k in
                let src = px.baseAddress! + indices[k] * 3072
                let dst = x.data + k * 3072
                let (dx, dy, flip) = params[k]
                for c in 0..<3 {
                    let zero = (0 - mean[c]) / std[c]
                    for y in 0..<32 {
                        let sy = y + dy
                        for xx in 0..<32 {
                            let ox = flip ? 31 - xx : xx
                            let sx = ox + dx
                            let v: Float
                            if sy < 0 || sy >= 32 || sx < 0 || sx >= 32 {
                                v = zero
                            } else {
                                v = (Float(src[c * 1024 + sy * 32 + sx]) / 255 - mean[c]) / std[c]
                            }
                            dst[c * 1024 + y * 32 + xx] = v
                        }
                    }
                }
            }
        }
        return (x, indices.map { labels[$0] })
    }
}
