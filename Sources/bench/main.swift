import Foundation
import ArgumentParser
import Engine
import NN
import ResNet
import Detection
import Detector
import Imaging

/// Release-mode benchmarks of the engine. Compare with PyTorch via scripts/bench_conv.sh, which runs the
/// same shapes in torch in the same session.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks the engine's kernels (run with `swift run -c release bench ...`).",
        subcommands: [
            ConvBench.self, ResNetBench.self, DetectorBench.self, FinetuneBench.self, GEMMBench.self,
            AllReduceBench.self, CeilingBench.self
        ],
        defaultSubcommand: ConvBench.self)
}

struct ConvShape: Codable {
    var name: String, n: Int, c: Int, h: Int, w: Int, o: Int, k: Int, stride: Int, pad: Int
    /// How many times the layer occurs in the network (for the whole-network estimate).
    var repeats: Int
    var flops: Double {
        let oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1
        return 2 * Double(n * o * oh * ow * c * k * k)
    }
}

/// The distinct convolutions of ResNet-101 at 224x224, batch 1 (conv1..conv5; stride on the 3x3).
func resnet101Shapes() -> [ConvShape] {
    var s: [ConvShape] = [
        ConvShape(name: "conv1 7x7/2", n: 1, c: 3, h: 224, w: 224, o: 64, k: 7, stride: 2, pad: 3, repeats: 1)
    ]
    let stages = [(64, 56, 3), (128, 28, 4), (256, 14, 23), (512, 7, 3)]
    var inC = 64, inH = 56
    for (i, (width, hw, blocks)) in stages.enumerated() {
        let st = i == 0 ? 1 : 2
        let tag = "layer\(i + 1)"
        s.append(
            ConvShape(
                name: "\(tag).0 1x1 in", n: 1, c: inC, h: inH, w: inH, o: width, k: 1, stride: 1, pad: 0, repeats: 1))
        s.append(
            ConvShape(
                name: "\(tag).0 3x3/\(st)", n: 1, c: width, h: inH, w: inH, o: width, k: 3, stride: st, pad: 1,
                repeats: 1))
        s.append(
            ConvShape(
                name: "\(tag) 1x1 out", n: 1, c: width, h: hw, w: hw, o: width * 4, k: 1, stride: 1, pad: 0,
                repeats: blocks))
        s.append(
            ConvShape(
                name: "\(tag).0 downsample", n: 1, c: inC, h: inH, w: inH, o: width * 4, k: 1, stride: st, pad: 0,
                repeats: 1))
        if blocks > 1 {
            s.append(
                ConvShape(
                    name: "\(tag) 1x1 in", n: 1, c: width * 4, h: hw, w: hw, o: width, k: 1, stride: 1, pad: 0,
                    repeats: blocks - 1))
            s.append(
                ConvShape(
                    name: "\(tag) 3x3", n: 1, c: width, h: hw, w: hw, o: width, k: 3, stride: 1, pad: 1,
                    repeats: blocks - 1))
        }
        inC = width * 4; inH = hw
    }
    return s
}

/// The distinct convolutions of CIFAR ResNet-20 at batch 128 (n = 3 blocks per stage).
func cifar20Shapes() -> [ConvShape] {
    [
        ConvShape(name: "conv1 3x3", n: 128, c: 3, h: 32, w: 32, o: 16, k: 3, stride: 1, pad: 1, repeats: 1),
        ConvShape(name: "stage1 3x3", n: 128, c: 16, h: 32, w: 32, o: 16, k: 3, stride: 1, pad: 1, repeats: 6),
        ConvShape(name: "stage2.0 3x3/2", n: 128, c: 16, h: 32, w: 32, o: 32, k: 3, stride: 2, pad: 1, repeats: 1),
        ConvShape(name: "stage2 3x3", n: 128, c: 32, h: 16, w: 16, o: 32, k: 3, stride: 1, pad: 1, repeats: 5),
        ConvShape(name: "stage3.0 3x3/2", n: 128, c: 32, h: 16, w: 16, o: 64, k: 3, stride: 2, pad: 1, repeats: 1),
        ConvShape(name: "stage3 3x3", n: 128, c: 64, h: 8, w: 8, o: 64, k: 3, stride: 1, pad: 1, repeats: 5)
    ]
}

func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// The options every benchmark takes; `apply()` sets the thread count, `write(_:)` the JSON results.
struct BenchOptions: ParsableArguments {
    @Option(help: "Timed iterations (the median is reported).") var iters = 3
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Write results as JSON to this file.") var json: String?

    /// Sets the thread count and prints the CPU, its features and the instruction set the kernels run with
    /// (`ENGINE_ISA=avx2|baseline` forces a lower one).
    func apply() {
        if let threads { Threading.threads = threads }
        print(InstructionSet.report)
    }

    func write(_ results: [String: Any]) throws {
        guard let json else { return }
        var results = results
        results["isa"] = InstructionSet.active.description
        results["cpu"] = InstructionSet.cpuDescription
        try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]).write(
            to: URL(fileURLWithPath: json))
    }
}

/// A Faster R-CNN at the paper's scale for the detector benchmarks: ResNet-`depth`-C4, 20 classes.
func benchDetector(depth: Int, configure: (inout DetectorConfig) -> Void = { _ in }) throws -> FasterRCNN {
    var cfg = DetectorConfig()
    cfg.backbone.depth = depth
    cfg.classNames = (1...20).map { "class\($0)" }
    configure(&cfg)
    return try FasterRCNN(cfg, seed: 1)
}

/// Median time of `iters` runs after one warm-up.
func timeIt(iters: Int, _ body: () -> Void) -> Double {
    body()
    var ts: [Double] = []
    for _ in 0..<iters { ts.append(seconds(body)) }
    return ts.sorted()[ts.count / 2]
}

/// GFLOP/s of a 2048^3 sgemm (median of `iters` after a warm-up) through the selected backend.
func sgemmGFLOPS(iters: Int = 3) -> Double {
    var rng = SeededRNG(seed: 1)
    let n = 2048
    let a = Tensor.randn([n, n], rng: &rng), b = Tensor.randn([n, n], rng: &rng), c = Tensor(zeros: [n, n])
    let t = timeIt(iters: iters) { sgemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n) }
    return 2 * Double(n * n * n) / t / 1e9
}

/// The arithmetic ceilings the whole-network figures are compared with: the engine's sgemm on a 2048^3 product
/// and the FMA peak of the active instruction set, both measured now on all threads.
struct CeilingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ceiling", abstract: "The sgemm ceiling (2048^3) and the measured FMA peak, in GFLOP/s.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.apply()
        let ceiling = sgemmGFLOPS(iters: options.iters), peak = InstructionSet.measuredPeakGFLOPS()
        print(
            String(
                format: "threads %d: sgemm 2048x2048x2048 %.1f GFLOP/s; FMA peak (%@) %.1f GFLOP/s", Threading.threads,
                ceiling, InstructionSet.active.description as NSString, peak))
        try options.write(["sgemm_ceiling_gflops": ceiling, "fma_peak_gflops": peak, "threads": Threading.threads])
    }
}

struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract:
            "Conv layers of ResNet-101 (224x224, batch 1) and CIFAR ResNet-20 (batch 128), forward and backward, with "
            + "the sgemm ceiling."
    )

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.apply()
        var rng = SeededRNG(seed: 1)
        // sgemm ceiling: a large square product.
        let n = 2048
        let ceiling = sgemmGFLOPS()
        let peak = InstructionSet.measuredPeakGFLOPS()
        print(
            String(
                format: "threads %d, sgemm (%@ backend) %dx%dx%d: %.1f GFLOP/s (ceiling); FMA peak (%@, "
                    + "measured): %.1f GFLOP/s (%%fma below is relative to it)", Threading.threads,
                GEMMBackend.gemmBackend.rawValue as NSString, n, n, n, ceiling,
                InstructionSet.active.description as NSString, peak))
        // OpenBLAS's ceiling in the same run (the reference the engine issue measures layers against).
        var blasCeiling = ceiling
        if GEMMBackend.gemmBackend != .openBLAS {
            let saved = GEMMBackend.gemmBackend
            GEMMBackend.gemmBackend = .openBLAS
            blasCeiling = sgemmGFLOPS()
            GEMMBackend.gemmBackend = saved
            print(
                String(
                    format: "OpenBLAS sgemm %dx%dx%d in the same run: %.1f GFLOP/s (%%blas below is relative to it)", n,
                    n, n, blasCeiling))
        }
        var results: [[String: Any]] = []
        for (net, shapes) in [("resnet101_224_b1", resnet101Shapes()), ("cifar_resnet20_b128", cifar20Shapes())] {
            print("\n\(net)")
            print(
                "layer                      shape (N,C,H,W)->O k/s   fwd ms  GF/s  %ceil %blas  %fma"
                    + " | bwd ms  GF/s  %ceil  %fma")
            var totF = 0.0, totB = 0.0
            for s in shapes {
                let x = Tensor.randn([s.n, s.c, s.h, s.w], rng: &rng, requiresGrad: true)
                let w = Tensor.randn([s.o, s.c, s.k, s.k], std: 0.05, rng: &rng, requiresGrad: true)
                let tf = timeIt(iters: options.iters) {
                    _ = GradMode.withoutGrad { conv2d(x, w, stride: (s.stride, s.stride), padding: (s.pad, s.pad)) }
                }
                let y = conv2d(x, w, stride: (s.stride, s.stride), padding: (s.pad, s.pad))
                let gy = Tensor.randn(y.shape, rng: &rng)
                // Backward: gradients of input and weight (twice the forward FLOPs).
                let tb =
                    timeIt(iters: options.iters) {
                        let yy = conv2d(x, w, stride: (s.stride, s.stride), padding: (s.pad, s.pad))
                        x.grad = nil; w.grad = nil
                        yy.backward(gy)
                    } - tf
                let gf = s.flops / tf / 1e9, gb = 2 * s.flops / tb / 1e9
                totF += tf * Double(s.repeats); totB += tb * Double(s.repeats)
                print(
                    String(
                        format:
                            "%-26@ %3d,%4d,%3d,%3d->%4d %d/%d %8.2f %5.1f %5.0f%% %5.0f%% %5.0f%% "
                            + "| %7.2f %5.1f %5.0f%% %5.0f%%",
                        s.name as NSString, s.n, s.c, s.h, s.w, s.o, s.k, s.stride, tf * 1e3, gf, 100 * gf / ceiling,
                        100 * gf / blasCeiling, 100 * gf / peak, tb * 1e3, gb, 100 * gb / ceiling, 100 * gb / peak))
                results.append([
                    "net": net, "layer": s.name, "fwd_ms": tf * 1e3, "bwd_ms": tb * 1e3,
                    "fwd_gflops": gf, "bwd_gflops": gb, "repeats": s.repeats
                ])
            }
            print(
                String(
                    format: "all conv layers of the network (with repeats): forward %.1f ms, backward %.1f ms",
                    totF * 1e3, totB * 1e3))
        }
        try options.write([
            "sgemm_ceiling_gflops": ceiling, "openblas_ceiling_gflops": blasCeiling, "fma_peak_gflops": peak,
            "threads": Threading.threads,
            "layers": results
        ])
    }
}

/// Whole-network timings: CIFAR training steps, ResNet-101 inference, peak memory of a training step.
struct ResNetBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resnet",
        abstract:
            "CIFAR ResNet-20/110 training steps (batch 128), ResNet-101 224x224 inference (batch 1), ResNet-101 "
            + "training step memory (batch 8)."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Comma-separated subset: r20,r110,r101,r101train") var only = "r20,r110,r101,r101train"

    func trainStep(_ net: ResNet, _ opt: SGD, _ x: Tensor, _ y: [Int]) {
        let loss = crossEntropy(net(x), targets: y)
        opt.zeroGrad()
        loss.backward()
        opt.step()
    }

    func run() throws {
        options.apply()
        var rng = SeededRNG(seed: 1)
        var out: [String: Double] = [:]
        let parts = Set(only.split(separator: ",").map(String.init))
        for (key, arch) in [("r20", "cifar_resnet20"), ("r110", "cifar_resnet110")] where parts.contains(key) {
            let net = ResNet(try ResNetConfig.named(arch), seed: 1)
            let opt = SGD(parameters: net.trainableParameters(), lr: 0.1, momentum: 0.9, weightDecay: 1e-4)
            let x = Tensor.randn([128, 3, 32, 32], rng: &rng)
            let y = (0..<128).map { $0 % 10 }
            let t = timeIt(iters: options.iters) { trainStep(net, opt, x, y) }
            print(String(format: "%@ training step, batch 128: %.3f s", arch as NSString, t))
            out["\(key)_train_step_s"] = t
        }
        if parts.contains("r101") {
            let net = ResNet(try ResNetConfig.named("resnet101"), seed: 1)
            net.eval()
            let x = Tensor.randn([1, 3, 224, 224], rng: &rng)
            Storage.liveBytes.resetPeak()
            let base = Storage.liveBytes.value
            let t = timeIt(iters: options.iters) { _ = GradMode.withoutGrad { net(x) } }
            let peak = Double(Storage.liveBytes.peak - base) / 1e6
            print(
                String(
                    format: "resnet101 inference 224x224, batch 1: %.3f s (peak tensor memory above weights: %.0f MB)",
                    t, peak))
            out["r101_infer_s"] = t
            out["r101_infer_peak_mb"] = peak
        }
        if parts.contains("r101train") {
            let net = ResNet(try ResNetConfig.named("resnet101"), seed: 1)
            let opt = SGD(parameters: net.trainableParameters(), lr: 0.01, momentum: 0.9, weightDecay: 1e-4)
            let x = Tensor.randn([8, 3, 224, 224], rng: &rng)
            let y = (0..<8).map { $0 }
            trainStep(net, opt, x, y)  // momentum buffers exist from now on
            Storage.liveBytes.resetPeak()
            let t = seconds { trainStep(net, opt, x, y) }
            let peakTensors = Double(Storage.liveBytes.peak) / 1e6
            let rss = Double(peakRSSBytes()) / 1e6
            print(
                String(
                    format: "resnet101 training step, batch 8: %.2f s; peak tensor memory %.0f MB; "
                        + "process peak RSS %.0f MB",
                    t, peakTensors, rss))
            out["r101_train_b8_s"] = t
            out["r101_train_b8_peak_tensor_mb"] = peakTensors
            out["r101_train_b8_peak_rss_mb"] = rss
        }
        try options.write(out)
    }
}

/// The detector at the paper's scale: ResNet-101-C4 on a 600x1000 input with 300 proposals.
struct DetectorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detector",
        abstract:
            "ResNet-101-C4 Faster R-CNN inference at 600x1000 with 300 proposals: trunk + RPN head + RoI pooling + "
            + "res5 head (fixed proposals, as the PyTorch script), and the whole detect pipeline."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Backbone depth.") var depth = 101

    func run() throws {
        options.apply()
        let model = try benchDetector(depth: depth) {
            $0.input.minSize = 600; $0.input.maxSize = 1000
        }
        model.eval()
        var rng = SeededRNG(seed: 2)
        let x = Tensor.randn([1, 3, 600, 1000], rng: &rng)
        // 300 fixed proposals (the same rule as scripts/bench/detector_torch.py: seeded uniform boxes).
        var props: [Float] = []
        for _ in 0..<300 {
            let w = rng.uniform(32, 400), h = rng.uniform(32, 400)
            let x0 = rng.uniform(0, 1000 - w), y0 = rng.uniform(0, 600 - h)
            props += [x0, y0, x0 + w, y0 + h]
        }
        let proposals = Tensor(props, shape: [300, 4])
        let pooler = try RoIPooler(kind: .roipool, outputSize: 14, spatialScale: 1.0 / 16)
        Storage.liveBytes.resetPeak()
        let base = Storage.liveBytes.value
        var parts: [String: [Double]] = [:]
        let t = timeIt(iters: options.iters) {
            GradMode.withoutGrad {
                var t0 = DispatchTime.now().uptimeNanoseconds
                func lap(_ k: String) {
                    let t1 = DispatchTime.now().uptimeNanoseconds; parts[k, default: []].append(Double(t1 - t0) / 1e9)
                    t0 = t1
                }
                let f = model.backbone(x); lap("trunk")
                _ = model.rpn(f); lap("rpn head")
                // As the detector does: channels-last regions when the head runs on that path.
                let cl = model.roiHeads.takesChannelsLast
                let r = pooler(f, rois: makeRoIs(boxes: proposals), channelsLast: cl); lap("roi pool")
                _ = cl ? model.roiHeads(channelsLast: r) : model.roiHeads(r); lap("res5 head")
            }
        }
        let peak = Double(Storage.liveBytes.peak - base) / 1e6
        // Each part: the median of the timed passes (the warm-up pass, which also packs the weights, left out).
        let part = { (k: String) -> Double in
            let v = parts[k]!.dropFirst().sorted(); return v[v.count / 2]
        }
        print(
            String(
                format:
                    "R%d-C4 600x1000, 300 proposals (trunk + RPN head + RoI pool + res5 head): %.2f s  [trunk %.2f, "
                    + "rpn %.3f, roi pool %.3f, head %.2f]; peak tensor memory above weights %.0f MB; peak RSS %.0f MB",
                depth, t, part("trunk"), part("rpn head"), part("roi pool"), part("res5 head"),
                peak, Double(peakRSSBytes()) / 1e6))
        // The whole pipeline on an image (proposals from the RPN, NMS, post-processing).
        var img = RGBImage(width: 1000, height: 600, fill: (90, 110, 140))
        img.fillRect(x: 200, y: 150, width: 300, height: 200, color: (220, 40, 40))
        let runner = DetectorRunner(model: model)
        let td = timeIt(iters: options.iters) { _ = try? runner.detect(img) }
        print(String(format: "whole detect() on a 1000x600 image (300 proposals, post-processing): %.2f s", td))
        try options.write([
            "c4_forward_s": t, "detect_s": td, "peak_tensor_mb": peak, "peak_rss_mb": Double(peakRSSBytes()) / 1e6,
            "trunk_s": part("trunk"), "rpn_s": part("rpn head"), "roi_pool_s": part("roi pool"),
            "head_s": part("res5 head")
        ])
    }
}

/// One fine-tuning iteration of ResNet-101-C4 at 600x1000, batch 1, 128 RoIs (the real training path:
/// anchor targets, sampling, proposals with NMS, RoI sampling, both heads' losses, backward, SGD step).
struct FinetuneBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Seconds per fine-tuning iteration of ResNet-101-C4 at 600x1000, batch 1, 128 RoIs, and peak memory.")
    @OptionGroup var options: BenchOptions
    @Option(help: "Backbone depth.") var depth = 101

    func run() throws {
        options.apply()
        let model = try benchDetector(depth: depth) { $0.roi.batchSizePerImage = 128 }
        // Random weights through 101 layers with frozen (identity) batch norm overflow; zero the last BN of
        // every residual branch (the "zero-init residual" trick) so values stay finite. Costs are unchanged.
        for (n, p) in model.namedParameters() where n.hasSuffix("bn3.weight") { p.fill(0) }
        model.train()
        let opt = SGD(parameters: model.trainableParameters(), lr: 0.001, momentum: 0.9, weightDecay: 1e-4)
        var rng = SeededRNG(seed: 2)
        let x = Tensor.randn([1, 3, 600, 1000], rng: &rng)
        let target = TrainingTarget(
            boxes: Tensor([100, 80, 400, 380, 500, 200, 900, 560, 620, 40, 760, 180], shape: [3, 4]), labels: [3, 7, 12]
        )
        func step() {
            var r = SeededRNG(seed: 5)
            let (loss, _) = model.losses(x, target: target, rng: &r)
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
        step()
        Storage.liveBytes.resetPeak()
        let t = timeIt(iters: options.iters) { step() }
        let peakTensors = Double(Storage.liveBytes.peak) / 1e6, rss = Double(peakRSSBytes()) / 1e6
        print(
            String(
                format:
                    "R%d-C4 fine-tuning iteration, 600x1000, batch 1, 128 RoIs: %.2f s; peak tensor memory %.0f MB; "
                    + "peak RSS %.0f MB",
                depth, t, peakTensors, rss))
        try options.write(["finetune_iter_s": t, "peak_tensor_mb": peakTensors, "peak_rss_mb": rss])
    }
}

/// Peak resident set size of this process (VmHWM), in bytes.
func peakRSSBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ").filter { !$0.isEmpty }
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return 0
}

if ProcessInfo.processInfo.environment["ENGINE_ALLOC_STATS"] != nil {
    atexit {
        let s = Storage.cacheStatistics
        FileHandle.standardError.write(
            Data(
                ("block cache: \(s.hits) hits, \(s.misses) misses (\(s.resizes) resized), \(s.evictions) evictions, "
                    + "\(s.cachedBytes >> 20) MB cached, peak in use \(s.peakInUse >> 20) MB\n").utf8))
    }
}
Bench.main()
