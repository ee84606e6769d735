import Foundation
import Engine
import NN

/// The ResNet family (He et al. 2016): ImageNet ResNet-18/34/50/101/152 and plain nets, CIFAR 6n+2 nets,
/// shortcut options A/B/C. Parameter names are torchvision's (`conv1.weight`, `layer1.0.bn2.running_var`,
/// `layer2.0.downsample.0.weight`, `fc.weight`), so torchvision checkpoints load by name.
public final class ResNet: Module {
    public let config: ResNetConfig
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    public let stages: [Sequential]
    public let fc: Linear

    /// A new network with He initialisation (normal, fan_out, as torchvision; BN weight 1, bias 0).
    public init(_ config: ResNetConfig, seed: UInt64 = 0) {
        self.config = config
        var rng = SeededRNG(seed: seed)
        let cifar = config.family == "cifar"
        conv1 = Conv2d(
            3, config.stemWidth, kernel: cifar ? 3 : 7, stride: cifar ? 1 : 2, padding: cifar ? 1 : 3, rng: &rng)
        bn1 = BatchNorm2d(config.stemWidth)
        var inC = config.stemWidth
        var stages: [Sequential] = []
        for (i, (blocks, width)) in zip(config.layers, config.widths).enumerated() {
            var list: [Module] = []
            for j in 0..<blocks {
                let stride = (i > 0 && j == 0) ? 2 : 1
                let b = ResidualBlock(
                    kind: config.block, inC: inC, width: width, stride: stride, option: config.shortcut,
                    strideInFirst1x1: config.strideInFirst1x1, rng: &rng)
                b.tag = "layer\(i + 1).\(j)"
                list.append(b)
                inC = width * config.expansion
            }
            stages.append(Sequential(list))
        }
        self.stages = stages
        fc = Linear(inC, config.numClasses, rng: &rng)
        super.init()
    }

    public override var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1)] + stages.enumerated().map { ("layer\($0.offset + 1)", $0.element) } + [
            ("fc", fc)
        ]
    }

    /// The stem: conv1, bn1, relu (and the 3x3/2 max pool for ImageNet nets).
    public func stem(_ x: Tensor) -> Tensor {
        if config.family == "cifar" {
            let y = ConvBN(conv1, bn1)(x)
            ResponseRecorder.active?.record("conv1", y)
            return relu(y)
        }
        return Self.imagenetStem(conv1, bn1, x)
    }

    /// The ImageNet stem: 7x7/2 convolution, batch norm, ReLU, 3x3/2 max pool (stride 4 in all).
    public static func imagenetStem(_ conv1: Conv2d, _ bn1: BatchNorm2d, _ x: Tensor) -> Tensor {
        maxPool2d(ConvBN(conv1, bn1)(x, relu: true), kernel: (3, 3), stride: (2, 2), padding: (1, 1))
    }

    /// Runs stage `i` (0-based; layer{i+1}).
    public func stage(_ i: Int, _ x: Tensor) -> Tensor { Self.run(stages[i], x) }

    /// Runs the residual blocks of a stage in order.
    public static func run(_ stage: Sequential, _ x: Tensor) -> Tensor {
        var h = x
        for b in stage.layers { h = (b as! ResidualBlock)(h) }
        return h
    }

    /// Features before the classifier: (N, C) after global average pooling.
    public func features(_ x: Tensor) -> Tensor {
        if let plan = inferenceStages(stages, stem: (conv1, bn1), maxPool: config.family != "cifar") {
            return globalAvgPoolChannelsLast(plan(x))
        }
        var h = stem(x)
        for i in 0..<stages.count { h = stage(i, h) }
        return globalAvgPool(h)
    }

    /// Class logits (N, numClasses) for images (N, 3, H, W).
    public func callAsFunction(_ x: Tensor) -> Tensor { fc(features(x)) }

    /// The stride-on-first-1x1 flag is an architecture choice fixed at construction; this tells whether a
    /// network's residual blocks use it (for checkpoint metadata).
    public var metadata: [String: String] {
        ["arch": config.name, "resnet_config": config.json, "format": "resnet-swift/1"]
    }
}

extension ResNetConfig {
    /// The config as stored in checkpoint metadata ("resnet_config": sorted keys, the struct's own names).
    public var json: String { (try? String(data: JSONEncoder.sorted.encode(self), encoding: .utf8)) ?? "{}" }
}

extension JSONEncoder {
    static var sorted: JSONEncoder { let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]; return e }
}
