import XCTest
import Engine
import NN
import ResNet
import TestSupport

final class ArchitectureTests: XCTestCase {
    /// Parameter counts equal torchvision's and the paper's.
    func testParameterCounts() throws {
        let expected: [(String, Int)] = [
            ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
            ("resnet101", 44_549_160), ("resnet152", 60_192_808)
        ]
        for (name, count) in expected {
            XCTAssertEqual(ResNet(try ResNetConfig.named(name)).parameterCount, count, name)
        }
        // CIFAR (paper, Table 6): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M.
        let cifar: [(String, Double)] = [
            ("cifar_resnet20", 0.27), ("cifar_resnet32", 0.46), ("cifar_resnet44", 0.66),
            ("cifar_resnet56", 0.85), ("cifar_resnet110", 1.7)
        ]
        for (name, m) in cifar {
            let n = Double(ResNet(try ResNetConfig.named(name)).parameterCount) / 1e6
            XCTAssertEqual(n, m, accuracy: m < 1 ? 0.005 : 0.05, name)
        }
        XCTAssertEqual(ResNet(try ResNetConfig.named("cifar_resnet20")).parameterCount, 269_722)
        XCTAssertEqual(ResNet(try ResNetConfig.named("cifar_resnet20_b")).parameterCount, 272_474)
        // Plain nets have no shortcuts: ResNet-34 (option B) minus its three projections.
        let plain34 = ResNet(try ResNetConfig.named("plain34")).parameterCount
        XCTAssertEqual(plain34, 21_797_672 - (64 * 128 + 256 + 128 * 256 + 512 + 256 * 512 + 1024))
        // Option C adds a projection to every block; option A has none at all.
        XCTAssertGreaterThan(ResNet(try ResNetConfig.named("resnet34_c")).parameterCount, 21_797_672)
        XCTAssertEqual(ResNet(try ResNetConfig.named("resnet34_a")).parameterCount, plain34)
    }

    func testNamesAndErrors() throws {
        XCTAssertEqual(try ResNetConfig.named("cifar_resnet1202").layers, [200, 200, 200])
        XCTAssertEqual(try ResNetConfig.named("cifar_plain56").shortcut, .none)
        XCTAssertEqual(try ResNetConfig.named("resnet50").name, "resnet50")
        XCTAssertEqual(try ResNetConfig.named("cifar_resnet110").name, "cifar_resnet110")
        for bad in ["resnet19", "vgg16", "cifar_resnet21", "plain50_b", "resnet", ""] {
            XCTAssertThrowsError(try ResNetConfig.named(bad)) { e in
                XCTAssertTrue("\(e)".contains("unknown architecture"), "\(e)")
            }
        }
        let names = ResNet(try ResNetConfig.named("resnet50")).namedParameters().map { $0.0 }
        for n in [
            "conv1.weight", "bn1.weight", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
            "layer1.0.downsample.1.bias", "layer4.2.bn3.weight", "fc.weight", "fc.bias"
        ] {
            XCTAssertTrue(names.contains(n), n)
        }
        let buffers = ResNet(try ResNetConfig.named("resnet18")).namedIntBuffers().map { $0.0 }
        XCTAssertTrue(buffers.contains("layer2.0.downsample.1.num_batches_tracked"))
    }

    /// Option A: subsample rows/columns 0, 2, 4, ... and append zero channels after the input's. With the
    /// residual branches of CIFAR ResNet-20's second stage silenced (last BN of each block: gamma = beta = 0),
    /// the stage is relu(shortcut(x)): on x >= 0 exactly the strided subsampling with 16 zero channels appended,
    /// and its input gradient is the output gradient's first 16 channels placed on the even rows and columns.
    func testOptionAShortcutValues() throws {
        let net = ResNet(try ResNetConfig.named("cifar_resnet20"), seed: 3)
        for (name, t) in net.namedParameters() where name.hasPrefix("layer2.") && name.contains(".bn2.") { t.fill(0) }
        net.eval()
        var rng = SeededRNG(seed: 1)
        let (n, c, h, w) = (2, 16, 8, 6)
        let x = Tensor.uniform([n, c, h, w], 0.1, 2, rng: &rng, requiresGrad: true)
        let y = net.stage(1, x)
        XCTAssertEqual(y.shape, [n, 2 * c, h / 2, w / 2])
        let gy = Tensor.uniform(y.shape, -1, 1, rng: &rng)
        sum(y * gy).backward()
        let gx = try XCTUnwrap(x.grad)
        for b in 0..<n {
            for k in 0..<(2 * c) {
                for i in 0..<(h / 2) {
                    for j in 0..<(w / 2) {
                        let out = y.data[((b * 2 * c + k) * (h / 2) + i) * (w / 2) + j]
                        let expected = k < c ? x.data[((b * c + k) * h + 2 * i) * w + 2 * j] : 0
                        XCTAssertEqual(out, expected, "y[\(b), \(k), \(i), \(j)]")
                    }
                }
            }
            for k in 0..<c {
                for i in 0..<h {
                    for j in 0..<w {
                        let expected: Float =
                            i % 2 == 0 && j % 2 == 0
                            ? gy.data[((b * 2 * c + k) * (h / 2) + i / 2) * (w / 2) + j / 2] : 0
                        XCTAssertEqual(
                            gx.data[((b * c + k) * h + i) * w + j], expected, accuracy: 1e-6,
                            "dx[\(b), \(k), \(i), \(j)]")
                    }
                }
            }
        }
        // Whole networks: CIFAR ResNet-20 (option A) and ResNet-50 (option B) end in the right shapes.
        let logits = GradMode.withoutGrad { net(Tensor.randn([2, 3, 32, 32], rng: &rng)) }
        XCTAssertEqual(logits.shape, [2, 10])
        let r50 = ResNet(try ResNetConfig.named("resnet50"), seed: 1)
        r50.eval()
        let f = GradMode.withoutGrad { r50.features(Tensor.randn([1, 3, 64, 64], rng: &rng)) }
        XCTAssertEqual(f.shape, [1, 2048])
    }

    /// Inference with batch norm folded into the convolutions equals the unfolded evaluation-mode network.
    func testFoldedInferenceMatchesTape() throws {
        let net = ResNet(try ResNetConfig.named("cifar_resnet20"), seed: 5)
        var rng = SeededRNG(seed: 2)
        for (_, t) in net.namedBuffers() { for i in 0..<t.count { t.data[i] = t.data[i] + rng.uniform(0, 0.5) } }
        net.eval()
        let x = Tensor.randn([2, 3, 32, 32], rng: &rng)
        let folded = GradMode.withoutGrad { net(x) }
        let taped = net(x)  // recording on: the unfolded conv -> batch norm path
        XCTAssertLessThan(folded.maxAbsDiff(taped), 1e-4 * max(1, taped.scalars.map { abs($0) }.max()!))
    }

    /// The gradient of the full network's loss checks out against finite differences on a few weights.
    func testTinyNetworkGradient() throws {
        var cfg = try ResNetConfig.named("cifar_resnet8")
        cfg.widths = [4, 8, 8]; cfg.stemWidth = 4; cfg.numClasses = 3
        let net = ResNet(cfg, seed: 4)
        var rng = SeededRNG(seed: 6)
        let x = Tensor.randn([4, 3, 8, 8], rng: &rng)
        let targets = [0, 2, 1, 2]
        let params = [net.conv1.weight, net.fc.weight, net.stages[1].layers[0].namedParameters()[0].1]
        // Training-mode BN; finite differences on the sum of CE loss.
        func loss() -> Tensor { crossEntropy(net(x), targets: targets) }
        net.zeroGrad()
        loss().backward()
        for p in params {
            let g = p.grad!.copy()
            for _ in 0..<4 {
                let i = rng.int(below: p.count)
                let old = p.data[i], eps: Float = 5e-4  // small: ReLU kinks are near
                p.data[i] = old + eps; let lp = GradMode.withoutGrad { loss().item() }
                p.data[i] = old - eps; let lm = GradMode.withoutGrad { loss().item() }
                p.data[i] = old
                let num = (lp - lm) / (2 * eps)
                XCTAssertEqual(g.data[i], num, accuracy: 3e-2 * abs(num) + 2e-3, "\(p.shape)[\(i)]")
            }
        }
    }
}

/// The channels-last inference path (packed weights, folded batch norms, fused residual and ReLU) against the
/// reference path of the training code, on every instruction-set path.
final class ChannelsLastInferenceTests: XCTestCase {
    override func setUp() { InferencePath.atBaseline = true }  // the portable loops too
    override func tearDown() { InferencePath.channelsLast = true; InferencePath.atBaseline = false }

    /// Logits of eval-mode networks outside autograd, both paths: basic and bottleneck blocks, stride in the
    /// 1x1 or the 3x3, shortcut options B and C, a plain net; random running statistics and BN affines so that
    /// the folding matters; within 1e-4 of the largest logit. Option A (zero-padding shortcuts) has no
    /// channels-last plan and keeps the reference path.
    func testChannelsLastMatchesReferencePath() throws {
        var configs: [(String, ResNetConfig)] = []
        for (name, block, shortcut, strideIn1x1) in [
            ("basic B", BlockKind.basic, ShortcutOption.B, false), ("basic C", .basic, .C, false),
            ("bottleneck B", .bottleneck, .B, false), ("bottleneck B, stride in 1x1", .bottleneck, .B, true),
            ("plain", .basic, ShortcutOption.none, false)
        ] {
            var c = try ResNetConfig.named(block == .basic ? "resnet18" : "resnet50")
            c.layers = [1, 2, 1, 1]; c.widths = [8, 16, 24, 32]; c.stemWidth = 8; c.numClasses = 5
            c.shortcut = shortcut; c.strideInFirst1x1 = strideIn1x1
            configs.append((name, c))
        }
        var cifar = try ResNetConfig.named("cifar_resnet8")
        cifar.numClasses = 3
        configs.append(("cifar option A", cifar))
        try onEveryKernelPath { level in
            for (name, cfg) in configs {
                let net = ResNet(cfg, seed: 11)
                var rng = SeededRNG(seed: 3)
                for (n, t) in net.namedParameters() + net.namedBuffers() where !n.hasSuffix("conv1.weight") {
                    for i in 0..<t.count {
                        t.data[i] =
                            n.hasSuffix("running_var") ? rng.uniform(0.5, 2) : t.data[i] + rng.uniform(-0.2, 0.2)
                    }
                }
                net.eval()
                let x = Tensor.randn(
                    [2, 3, cfg.family == "cifar" ? 32 : 64, cfg.family == "cifar" ? 32 : 48], rng: &rng)
                InferencePath.channelsLast = false
                let reference = GradMode.withoutGrad { net(x) }
                InferencePath.channelsLast = true
                let fast = GradMode.withoutGrad { net(x) }
                let planned = GradMode.withoutGrad { net.inferenceStages(net.stages) } != nil
                XCTAssertEqual(planned, cfg.shortcut != .A, "\(name): channels-last plan built")
                assertClose(fast, reference, rtol: 1e-4, atol: 0, "\(name) (\(level))")
            }
        }
    }

    /// At the baseline level, where the channels-last kernels are portable loops, inference keeps the reference
    /// path (OpenBLAS products) unless `atBaseline` asks for them; at AVX2 and above the channels-last path runs.
    func testBaselineLevelKeepsReferencePathByDefault() throws {
        var cfg = try ResNetConfig.named("resnet18")
        cfg.layers = [1, 1, 1, 1]; cfg.widths = [8, 8, 16, 16]; cfg.stemWidth = 8; cfg.numClasses = 4
        let net = ResNet(cfg, seed: 1)
        net.eval()
        onEveryKernelPath { level in
            InferencePath.atBaseline = false
            XCTAssertEqual(
                GradMode.withoutGrad { net.inferenceStages(net.stages) } != nil, level >= .avx2, "\(level), default")
            InferencePath.atBaseline = true
            XCTAssertNotNil(GradMode.withoutGrad { net.inferenceStages(net.stages) }, "\(level), atBaseline")
        }
    }

    /// A plan never outlives the weights it was built from: loading a checkpoint in evaluation mode, or switching
    /// modes, rebuilds it (the logits follow the new weights).
    func testPlanFollowsLoadedWeights() throws {
        var cfg = try ResNetConfig.named("resnet18")
        cfg.layers = [1, 1, 1, 1]; cfg.widths = [8, 8, 16, 16]; cfg.stemWidth = 8; cfg.numClasses = 4
        let a = ResNet(cfg, seed: 1), b = ResNet(cfg, seed: 2)
        var w = SafeTensorsWriter()
        for (n, t) in b.namedParameters() + b.namedBuffers() { w.add(n, t) }
        let url = try makeScratchFolder("plan").appendingPathComponent("b.safetensors")
        try w.write(to: url)
        var rng = SeededRNG(seed: 4)
        let x = Tensor.randn([1, 3, 40, 40], rng: &rng)
        a.eval(); b.eval()
        let before = GradMode.withoutGrad { a(x) }
        try a.load(SafeTensorsFile(contentsOf: url), strict: false)
        let after = GradMode.withoutGrad { a(x) }, expected = GradMode.withoutGrad { b(x) }
        XCTAssertGreaterThan(after.maxAbsDiff(before), 1e-3, "the weights changed")
        assertClose(after, expected, rtol: 1e-5, atol: 0, "logits after loading in evaluation mode")
    }
}
