import Foundation

/// A problem with a data set on disk; the message names the file and what is wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}

/// Per-channel input normalisation: x = (pixel / 255 - mean) / std.
public struct Normalization: Codable, Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }
    /// CIFAR-10 training-set statistics.
    public static let cifar10 = Normalization(mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
    /// torchvision's ImageNet statistics.
    public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
}

/// Deterministic sub-seeds: the randomness of batch b of epoch e depends only on (seed, e, b), so a run
/// resumed at any iteration draws exactly what an uninterrupted run would.
public func derivedSeed(_ seed: UInt64, _ a: UInt64, _ b: UInt64 = 0) -> UInt64 {
    var x = seed &+ 0x9E37_79B9_7F4A_7C15 &* (a &+ 1) &+ 0xD1B5_4A32_D192_ED03 &* (b &+ 1)
    x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
    x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
    return x ^ (x >> 31)
}
