import Foundation
import Engine
import NN

/// Records the standard deviation of layer responses (the paper's Fig. 7 analysis): the outputs of each
/// 3x3 layer after batch norm, before the nonlinearity and the addition. Set `ResponseRecorder.active`
/// to a recorder to collect; nil (the default) costs nothing.
public final class ResponseRecorder {
    nonisolated(unsafe) public static var active: ResponseRecorder? = nil
    /// Layer names in forward order with running sums for the std over all values seen.
    public private(set) var names: [String] = []
    private var sums: [String: (n: Double, s: Double, s2: Double)] = [:]
    public init() {}

    func record(_ name: String, _ t: Tensor) {
        if sums[name] == nil { names.append(name); sums[name] = (0, 0, 0) }
        var (n, s, s2) = sums[name]!
        for i in 0..<t.count { let v = Double(t.data[i]); s += v; s2 += v * v }
        n += Double(t.count)
        sums[name] = (n, s, s2)
    }

    /// Standard deviation of each recorded layer's responses, in forward order.
    public var stds: [(String, Double)] {
        names.map { name in
            let (n, s, s2) = sums[name]!
            let m = s / n
            return (name, max(0, s2 / n - m * m).squareRoot())
        }
    }
}

/// conv -> batch norm, with the batch norm folded into the convolution at inference time.
final class ConvBN {
    let conv: Conv2d
    let bn: BatchNorm2d
    init(_ conv: Conv2d, _ bn: BatchNorm2d) { self.conv = conv; self.bn = bn }

    /// conv then batch norm, then ReLU when `relu`. Outside autograd with fixed statistics (eval or frozen
    /// batch norm) the norm becomes a per-channel scale and shift applied, with the ReLU, in one pass over
    /// the convolution's output.
    func callAsFunction(_ x: Tensor, relu fuseRelu: Bool = false) -> Tensor {
        if !GradMode.isEnabled && (!bn.training || bn.frozen) {
            let (scale, shift) = folded
            let y = conv2d(
                x, conv.weight, bias: nil, stride: conv.stride, padding: conv.padding, dilation: conv.dilation)
            channelAffineInPlace(y, scale: scale, shift: shift, relu: fuseRelu)
            return y
        }
        return bn(conv(x), relu: fuseRelu)
    }

    /// The batch norm with fixed statistics as y = conv_without_bias(x) * scale + shift, per output channel (the
    /// convolution's own bias, if any, folded into the shift).
    var folded: (scale: [Float], shift: [Float]) {
        var (scale, shift) = bn.foldedAffine()
        if let cb = conv.bias { for o in 0..<shift.count { shift[o] += cb.data[o] * scale[o] } }
        return (scale, shift)
    }
}

/// The shortcut branch of a block.
final class Shortcut: Module {
    enum Kind { case identity, zeroPad(stride: Int, extra: Int), projection(Conv2d, BatchNorm2d) }
    let kind: Kind
    init(_ kind: Kind) { self.kind = kind; super.init() }

    // torchvision names the projection `downsample.0` (conv) and `downsample.1` (BN).
    override var children: [(String, Module)] {
        if case .projection(let c, let b) = kind { return [("0", c), ("1", b)] }
        return []
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch kind {
        case .identity: return x
        case .zeroPad(let s, let extra): return padChannels(subsample(x, stride: s), extra: extra)
        case .projection(let c, let b): return ConvBN(c, b)(x)
        }
    }

    static func make(option: ShortcutOption, inC: Int, outC: Int, stride: Int, rng: inout SeededRNG) -> Shortcut? {
        let changes = stride != 1 || inC != outC
        switch option {
        case .none: return nil
        case .A:
            return Shortcut(changes ? .zeroPad(stride: stride, extra: outC - inC) : .identity)
        case .B, .C:
            if option == .B && !changes { return Shortcut(.identity) }
            return Shortcut(.projection(Conv2d(inC, outC, kernel: 1, stride: stride, rng: &rng), BatchNorm2d(outC)))
        }
    }
}

/// A residual (or plain) block: basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1), torchvision layout.
public final class ResidualBlock: Module {
    let kind: BlockKind
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let conv3: Conv2d?, bn3: BatchNorm2d?
    let shortcut: Shortcut?
    /// Name used by the layer-response analysis.
    var tag = ""

    init(
        kind: BlockKind, inC: Int, width: Int, stride: Int, option: ShortcutOption, strideInFirst1x1: Bool,
        rng: inout SeededRNG
    ) {
        self.kind = kind
        switch kind {
        case .basic:
            conv1 = Conv2d(inC, width, kernel: 3, stride: stride, padding: 1, rng: &rng); bn1 = BatchNorm2d(width)
            conv2 = Conv2d(width, width, kernel: 3, padding: 1, rng: &rng); bn2 = BatchNorm2d(width)
            conv3 = nil; bn3 = nil
            shortcut = Shortcut.make(option: option, inC: inC, outC: width, stride: stride, rng: &rng)
        case .bottleneck:
            let s1 = strideInFirst1x1 ? stride : 1, s3 = strideInFirst1x1 ? 1 : stride
            conv1 = Conv2d(inC, width, kernel: 1, stride: s1, rng: &rng); bn1 = BatchNorm2d(width)
            conv2 = Conv2d(width, width, kernel: 3, stride: s3, padding: 1, rng: &rng); bn2 = BatchNorm2d(width)
            conv3 = Conv2d(width, width * 4, kernel: 1, rng: &rng); bn3 = BatchNorm2d(width * 4)
            shortcut = Shortcut.make(option: option, inC: inC, outC: width * 4, stride: stride, rng: &rng)
        }
        super.init()
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let conv3, let bn3 { c += [("conv3", conv3), ("bn3", bn3)] }
        if let shortcut, !shortcut.children.isEmpty { c.append(("downsample", shortcut)) }
        return c
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let rec = ResponseRecorder.active
        var out: Tensor
        if kind == .basic && rec != nil {
            out = ConvBN(conv1, bn1)(x)
            rec?.record(tag + ".conv1", out)
            out = relu(out)
        } else {
            out = ConvBN(conv1, bn1)(x, relu: true)
        }
        if let conv3, let bn3 {
            out = ConvBN(conv2, bn2)(out, relu: rec == nil)
            rec?.record(tag + ".conv2", out)
            out = ConvBN(conv3, bn3)(rec == nil ? out : relu(out))
        } else {
            out = ConvBN(conv2, bn2)(out)
            rec?.record(tag + ".conv2", out)
        }
        guard let shortcut else { return relu(out) }
        return addRelu(out, shortcut(x))
    }
}

/// Which inference path eval-mode forward passes outside autograd take: the channels-last one (`ChannelsLastStages`:
/// packed weights, folded batch norms, fused residual and ReLU; the default where the vector kernels exist) or the
/// reference path of the training code (`ENGINE_INFERENCE=reference`, or set `channelsLast` to false), kept for
/// comparison and tests.
public enum InferencePath {
    nonisolated(unsafe) public static var channelsLast: Bool =
        ProcessInfo.processInfo.environment["ENGINE_INFERENCE"]?.lowercased() != "reference"
    /// Whether the channels-last path also runs at the baseline instruction-set level, where its kernels are
    /// portable C loops: correct, but several times slower than the reference path, whose products go to OpenBLAS
    /// there. Off by default; tests turn it on to check those loops (as does `ENGINE_INFERENCE=channels-last`).
    nonisolated(unsafe) public static var atBaseline: Bool =
        ProcessInfo.processInfo.environment["ENGINE_INFERENCE"]?.lowercased() == "channels-last"
    /// Whether the channels-last path is taken now (at the active instruction set).
    public static var enabled: Bool { channelsLast && (InstructionSet.active >= .avx2 || atBaseline) }
}

/// Residual stages prepared for inference on channels-last tensors (N, H, W, C): every convolution with its
/// batch norm folded in (scale into the packed weights, shift as the bias), the ReLU and the shortcut addition
/// fused into the last convolution of each block. Built from the weights at the time of construction.
public final class ChannelsLastStages {
    struct Block {
        let conv1: PackedConv, conv2: PackedConv, conv3: PackedConv?
        /// nil with `residual`: identity shortcut.
        let projection: PackedConv?
        let residual: Bool
    }
    let blocks: [Block]
    /// The stem (conv1 with bn1 folded in and the ReLU fused; then the 3x3/2 max pool when `stemPool`), when the
    /// plan starts from the image.
    let stem: PackedConv?
    let stemPool: Bool

    /// nil when a block cannot run on this path: shortcut option A (zero-padding), dilated convolutions, or
    /// batch norms that use batch statistics (training mode, not frozen). With `stem` (conv1 and bn1), the plan
    /// starts from the image (channels-first, as the networks take it) with the stem, followed by the 3x3/2 max
    /// pool of ImageNet networks when `maxPool`.
    public init?(_ stages: [Sequential], stem: (Conv2d, BatchNorm2d)? = nil, maxPool: Bool = true) {
        func fold(_ conv: Conv2d, _ bn: BatchNorm2d) -> PackedConv? {
            guard conv.dilation == (1, 1), !bn.training || bn.frozen else { return nil }
            let (scale, shift) = ConvBN(conv, bn).folded
            return PackedConv(
                weight: conv.weight, scale: scale, bias: shift, stride: conv.stride, padding: conv.padding)
        }
        var blocks: [Block] = []
        for stage in stages {
            for case let b as ResidualBlock in stage.layers {
                guard let c1 = fold(b.conv1, b.bn1), let c2 = fold(b.conv2, b.bn2) else { return nil }
                var c3: PackedConv? = nil
                if let conv3 = b.conv3, let bn3 = b.bn3 {
                    guard let c = fold(conv3, bn3) else { return nil }
                    c3 = c
                }
                var projection: PackedConv? = nil
                switch b.shortcut?.kind {
                case nil, .identity?: break
                case .zeroPad?: return nil
                case .projection(let c, let bn)?:
                    guard let p = fold(c, bn) else { return nil }
                    projection = p
                }
                blocks.append(
                    Block(conv1: c1, conv2: c2, conv3: c3, projection: projection, residual: b.shortcut != nil))
            }
            guard stage.layers.allSatisfy({ $0 is ResidualBlock }) else { return nil }
        }
        self.blocks = blocks
        if let (conv, bn) = stem {
            guard let s = fold(conv, bn) else { return nil }
            self.stem = s
        } else {
            self.stem = nil
        }
        stemPool = maxPool
    }

    /// x: (N, H, W, C), or the image (N, 3, H, W) when the plan has a stem -> the last stage's output,
    /// channels-last.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        if let stem {
            h = stem(toChannelsLast(x), relu: true)
            if stemPool { h = maxPool2dChannelsLast(h, kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        }
        for b in blocks {
            let shortcut = b.residual ? (b.projection?(h, relu: false) ?? h) : nil
            var t = b.conv1(h, relu: true)
            if let c3 = b.conv3 {
                t = b.conv2(t, relu: true); h = c3(t, residual: shortcut, relu: true)
            } else {
                h = b.conv2(t, residual: shortcut, relu: true)
            }
        }
        return h
    }
}

extension Module {
    /// Outside autograd in evaluation mode (and with `InferencePath.enabled`): `stages` prepared for
    /// channels-last inference, built once per mode change or weight load and kept on this module (one plan per
    /// module: always pass the same stages); otherwise, or when the stages cannot run on that path, nil.
    public func inferenceStages(
        _ stages: [Sequential], stem: (Conv2d, BatchNorm2d)? = nil, maxPool: Bool = true
    ) -> ChannelsLastStages? {
        guard InferencePath.enabled && !training && !GradMode.isEnabled && ResponseRecorder.active == nil
        else { return nil }
        return inferencePlan { ChannelsLastStages(stages, stem: stem, maxPool: maxPool) }
    }
}
