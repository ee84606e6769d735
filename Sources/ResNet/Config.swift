import Foundation

/// Shortcut connections of the ResNet paper (section 3.3): A = parameter-free identity with zero-padded
/// channels where the shape changes, B = projections only where the shape changes, C = projections on
/// every block. `none` gives the plain (non-residual) counterpart.
public enum ShortcutOption: String, Codable, Sendable, CaseIterable {
    case A, B, C, none
}

public enum BlockKind: String, Codable, Sendable {
    case basic, bottleneck
}

/// Everything that defines a ResNet's architecture. Depth is data: any block counts and widths work.
public struct ResNetConfig: Codable, Equatable, Sendable {
    /// "imagenet" (7x7 stem + max pool) or "cifar" (3x3 stem with `stemWidth` filters, no pool).
    public var family: String
    public var block: BlockKind
    /// Blocks per stage, e.g. [3, 4, 23, 3] for ResNet-101, [n, n, n] for CIFAR 6n+2.
    public var layers: [Int]
    /// Base widths per stage (bottleneck outputs are 4x these).
    public var widths: [Int]
    public var stemWidth: Int
    public var shortcut: ShortcutOption
    /// MSRA/Caffe bottlenecks put the stride on the first 1x1 (Detectron2's STRIDE_IN_1X1); torchvision
    /// puts it on the 3x3.
    public var strideInFirst1x1: Bool
    public var numClasses: Int

    public var expansion: Int { block == .bottleneck ? 4 : 1 }
    public var isResidual: Bool { shortcut != .none }
    public var outputChannels: Int { widths.last! * expansion }

    public init(
        family: String, block: BlockKind, layers: [Int], widths: [Int], stemWidth: Int,
        shortcut: ShortcutOption, strideInFirst1x1: Bool = false, numClasses: Int
    ) {
        self.family = family; self.block = block; self.layers = layers; self.widths = widths
        self.stemWidth = stemWidth; self.shortcut = shortcut; self.strideInFirst1x1 = strideInFirst1x1
        self.numClasses = numClasses
    }

    /// Number of weighted layers (the "depth" in the model's name).
    public var depth: Int { layers.reduce(0, +) * (block == .bottleneck ? 3 : 2) + 2 }

    /// The canonical architecture name (`resnet101`, `plain34`, `cifar_resnet56`, ...).
    public var name: String {
        let base = isResidual ? "resnet" : "plain"
        return family == "cifar" ? "cifar_\(base)\(depth)" : "\(base)\(depth)"
    }

    public struct UnknownArchitecture: Error, CustomStringConvertible {
        public let name: String
        public var description: String {
            "unknown architecture \"\(name)\": expected resnet18/34/50/101/152, plain18/34, cifar_resnetN or "
            + "cifar_plainN with N = 6n+2 (20, 32, 44, 56, 110, 1202, ...), optionally with a shortcut suffix _A, _B "
              + "or _C"
        }
    }

    /// Parses an architecture name. A suffix `_A`, `_B` or `_C` selects the shortcut option (defaults: B for
    /// ImageNet nets, A for CIFAR nets; plain nets have none).
    public static func named(_ raw: String, numClasses: Int? = nil) throws -> ResNetConfig {
        var name = raw.lowercased()
        var option: ShortcutOption? = nil
        for o in ["a", "b", "c"] where name.hasSuffix("_" + o) {
            option = ShortcutOption(rawValue: o.uppercased())
            name.removeLast(2)
        }
        let cifar = name.hasPrefix("cifar_")
        if cifar { name.removeFirst(6) }
        let plain = name.hasPrefix("plain")
        guard plain || name.hasPrefix("resnet") else { throw UnknownArchitecture(name: raw) }
        guard let depth = Int(name.dropFirst(plain ? 5 : 6)) else { throw UnknownArchitecture(name: raw) }
        if plain && option != nil { throw UnknownArchitecture(name: raw) }
        let shortcut: ShortcutOption = plain ? .none : (option ?? (cifar ? .A : .B))
        if cifar {
            guard depth >= 8, (depth - 2) % 6 == 0 else { throw UnknownArchitecture(name: raw) }
            let n = (depth - 2) / 6
            return ResNetConfig(
                family: "cifar", block: .basic, layers: [n, n, n], widths: [16, 32, 64], stemWidth: 16,
                shortcut: shortcut, numClasses: numClasses ?? 10)
        }
        let table: [Int: (BlockKind, [Int])] = [
            18: (.basic, [2, 2, 2, 2]), 34: (.basic, [3, 4, 6, 3]),
            50: (.bottleneck, [3, 4, 6, 3]), 101: (.bottleneck, [3, 4, 23, 3]),
            152: (.bottleneck, [3, 8, 36, 3])
        ]
        guard let (block, layers) = table[depth] else { throw UnknownArchitecture(name: raw) }
        return ResNetConfig(
            family: "imagenet", block: block, layers: layers, widths: [64, 128, 256, 512], stemWidth: 64,
            shortcut: shortcut, numClasses: numClasses ?? 1000)
    }
}
