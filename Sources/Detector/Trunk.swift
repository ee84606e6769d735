import Foundation
import Engine
import NN
import ResNet

/// The shared trunk: ResNet conv1 .. conv4_x (stride 16), torchvision names under `backbone.`.
public final class Trunk: Module {
    public let conv1: Conv2d
    public let bn1: BatchNorm2d
    /// layer1 .. layer3.
    public let stages: [Sequential]
    public let outChannels: Int

    /// The first three stages of `net` (its layer4 becomes the res5 head, its fc is not used).
    init(_ net: ResNet) {
        conv1 = net.conv1; bn1 = net.bn1
        stages = Array(net.stages.prefix(3))
        outChannels = net.config.widths[2] * net.config.expansion
        super.init()
    }

    public override var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1)] + stages.enumerated().map { ("layer\($0.offset + 1)", $0.element) }
    }

    /// (N, 3, H, W) -> (N, C4, ceil(H/16), ceil(W/16))
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let plan = inferenceStages(stages, stem: (conv1, bn1)) { return toChannelsFirst(plan(x)) }
        return stages.reduce(ResNet.imagenetStem(conv1, bn1, x)) { ResNet.run($1, $0) }
    }
}
