import XCTest
import Foundation
import Engine
import NN
import ResNet
import Imaging
import Detection
import Detector
import Support

/// A tiny VOC folder of generated images: coloured squares ("box") and discs ("disc") on a gradient.
func writeTinyVOC(_ root: URL, images: Int = 4, seed: UInt64 = 1) throws {
    let fm = FileManager.default
    for d in ["JPEGImages", "Annotations", "ImageSets/Main"] {
        try fm.createDirectory(at: root.appendingPathComponent(d), withIntermediateDirectories: true)
    }
    var rng = SeededRNG(seed: seed)
    var ids: [String] = []
    for i in 0..<images {
        let id = String(format: "%06d", i)
        ids.append(id)
        var img = RGBImage(width: 160, height: 128, fill: (0, 0, 0))
        for y in 0..<128 { for x in 0..<160 { img[x, y] = (UInt8(60 + x / 4), UInt8(80 + y / 4), 120) } }
        var objects = ""
        for k in 0..<2 {
            let cls = (i + k) % 2 == 0 ? "box" : "disc"
            let s = 28 + rng.int(below: 20)
            let x0 = k == 0 ? 8 + rng.int(below: 30) : 90 + rng.int(below: 20), y0 = 10 + rng.int(below: 128 - s - 20)
            if cls == "box" {
                img.fillRect(x: x0, y: y0, width: s, height: s, color: (230, 40, 40))
            } else {
                img.fillDisc(x: x0 + s / 2, y: y0 + s / 2, diameter: s, color: (40, 220, 60))
            }
            objects +=
                "<object><name>\(cls)</name><difficult>0</difficult><bndbox><xmin>\(x0)</xmin><ymin>\(y0)</ymin>"
                + "<xmax>\(x0 + s)</xmax><ymax>\(y0 + s)</ymax></bndbox></object>"
        }
        try ImageIO.writePNG(img, to: root.appendingPathComponent("JPEGImages/\(id).png"))
        try
            ("<annotation><filename>\(id).png</filename><size><width>160</width><height>128</height><depth>3</depth>"
             + "</size>\(objects)</annotation>")
            .write(to: root.appendingPathComponent("Annotations/\(id).xml"), atomically: true, encoding: .utf8)
    }
    for split in ["trainval", "test"] {
        try (ids.joined(separator: "\n") + "\n").write(
            to: root.appendingPathComponent("ImageSets/Main/\(split).txt"), atomically: true, encoding: .utf8)
    }
}

func tinyFinetuneConfig(_ root: URL) -> FinetuneConfig {
    var c = FinetuneConfig()
    c.detector.backbone.depth = 18
    c.detector.backbone.widths = [16, 32, 64, 128]
    c.detector.backbone.stemWidth = 16
    c.detector.backbone.freezeAt = 0
    c.detector.anchors.sizes = [16, 32, 64]
    c.detector.input.minSize = 256; c.detector.input.maxSize = 400
    c.detector.rpn.preNmsTopKTrain = 600; c.detector.rpn.postNmsTopKTrain = 100
    c.detector.rpn.preNmsTopKTest = 300; c.detector.rpn.postNmsTopKTest = 50
    c.detector.rpn.batchSizePerImage = 64
    c.detector.roi.batchSizePerImage = 32
    c.detector.roi.resolution = 8
    c.detector.roi.pooler =
        RoIPoolerKind(rawValue: ProcessInfo.processInfo.environment["OVERFIT_POOLER"] ?? "") ?? .roialign
    c.data.path = root.path
    c.data.split = "trainval"; c.data.valSplit = "test"
    c.solver.iterations = 10; c.solver.lr = 0.02; c.solver.warmupIterations = 10; c.solver.milestones = []
    c.solver.scales = [256]; c.solver.flip = true
    c.solver.checkpointEvery = 0
    return c
}

/// Finite differences of the whole detector loss against the gradient of one backward pass of `loss`, on
/// the entries of each named parameter with the largest analytic |gradient| (random entries are mostly near
/// zero and pass any tolerance). Per parameter:
///
/// - the largest |gradient| must exceed `floorFactor` x `absTol`, so a zero or missing gradient fails;
/// - candidates in order of |gradient|, at most 5 x `perParameter`: where the analytic gradient at w - eps,
///   w, w + eps is not close to linear (|g(w+eps) - 2 g(w) + g(w-eps)| > relTol |g(w)|, a ReLU or max-pool
///   switch within +-eps, where a central difference measures the average of two slopes) the entry is
///   skipped; otherwise the central difference (step eps, loss values in Double) must satisfy
///   |analytic - numeric| <= relTol * |numeric| + absTol;
/// - `perParameter` entries must be checked.
///
/// The defaults, measured on the setups of the two tests that use this and on 40 other seeds of each (1,680
/// entries checked): none outside the tolerance, the largest error 86% of it (a gradient of 5e-4, where
/// the loss's Float rounding, about 4e-5 in a central difference at eps 1e-3, dominates), 99% of them
/// under half of it. So a wrong sign, a factor of 2, or a missing term that carries a tenth or more of a
/// checked entry's gradient fails.
/// Skipping looks at analytic values only, never at the finite differences they are compared with.
/// Leaves the gradients cleared.
/// Returns how many entries were checked.
func checkDetectorGradients(
    _ m: FasterRCNN, names: [String], perParameter: Int = 3, eps: Float = 1e-3,
    relTol: Double = 0.1, absTol: Double = 5e-5, floorFactor: Double = 20,
    file: StaticString = #filePath, line: UInt = #line, _ loss: () -> Tensor
) throws -> Int {
    defer { m.zeroGrad() }
    m.zeroGrad()
    loss().backward()
    let params = Dictionary(uniqueKeysWithValues: m.namedParameters())
    let grads = params.compactMapValues { $0.grad?.scalars }  // before the checks below run more backward passes
    let verbose = ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil
    var checked = 0
    for name in names {
        let p = try XCTUnwrap(params[name], name, file: file, line: line)
        let g = try XCTUnwrap(grads[name], "\(name) has no gradient", file: file, line: line)
        // Largest |gradient| first; the lower index on ties.
        let order = g.indices.sorted { abs(g[$0]) != abs(g[$1]) ? abs(g[$0]) > abs(g[$1]) : $0 < $1 }
        XCTAssertGreaterThan(
            Double(abs(g[order[0]])), floorFactor * absTol,
            "\(name): largest |gradient| \(abs(g[order[0]])) is within the noise floor", file: file, line: line)
        var here = 0, skipped: [Int] = []
        for i in order.prefix(5 * perParameter) where here < perParameter {
            let old = p.data[i]
            func analytic(_ e: Float) -> Double {
                p.data[i] = old + e; m.zeroGrad(); loss().backward(); p.data[i] = old
                return Double(p.grad?.data[i] ?? 0)
            }
            let gi = Double(g[i]), bend = analytic(eps) - 2 * gi + analytic(-eps)
            if abs(bend) > relTol * abs(gi) { skipped.append(i); continue }
            p.data[i] = old + eps; let lp = GradMode.withoutGrad { Double(loss().item()) }
            p.data[i] = old - eps; let lm = GradMode.withoutGrad { Double(loss().item()) }
            p.data[i] = old
            let num = (lp - lm) / (Double(old + eps) - Double(old - eps))
            if verbose { print("gradcheck \(name)[\(i)] analytic \(gi) central \(num) (skipped before: \(skipped))") }
            XCTAssertEqual(
                gi, num, accuracy: relTol * abs(num) + absTol, "\(name)[\(i)] analytic vs central difference",
                file: file, line: line)
            here += 1
        }
        XCTAssertEqual(
            here, perParameter,
            "\(name): too few entries where the loss is smooth within +-\(eps) (skipped \(skipped))",
            file: file, line: line)
        checked += here
    }
    return checked
}

final class FinetuneTests: XCTestCase {
    func dir() -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ft-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    /// Overfit: a small-depth C4 detector fine-tuned on 4 generated images reaches a loss near zero (under
    /// 5% of where it started, and under 0.08) and mAP@0.5 = 1.0 on those images.
    func testOverfitFourImages() throws {
        let d = dir()
        try writeTinyVOC(d.appendingPathComponent("voc"))
        var cfg = tinyFinetuneConfig(d.appendingPathComponent("voc"))
        cfg.solver.iterations = Int(ProcessInfo.processInfo.environment["OVERFIT_ITERS"] ?? "") ?? 600
        cfg.solver.milestones = [cfg.solver.iterations * 3 / 4]
        cfg.solver.flip = false
        var o = FinetuneOptions(outDir: d.appendingPathComponent("run"))
        o.quiet = ProcessInfo.processInfo.environment["OVERFIT_VERBOSE"] == nil
        let t = try DetectorTrainer(config: cfg, options: o)
        try t.run()
        let losses = t.log.compactMap { $0.loss }
        let lastMean = losses.suffix(20).reduce(0, +) / 20
        if ProcessInfo.processInfo.environment["OVERFIT_VERBOSE"] != nil {
            print("first 5 mean", losses.prefix(5).reduce(0, +) / 5, "last 20 mean", lastMean)
        }
        // Measured: 1.51 -> 0.049 (3.2%) over 600 iterations; what is left is mostly the head's
        // cross-entropy on freshly sampled RoIs right at the 0.5 IoU fg/bg boundary.
        XCTAssertLessThan(
            lastMean, 0.05 * losses.prefix(5).reduce(0, +) / 5,
            "loss did not fall enough: \(losses.prefix(5)) ... \(losses.suffix(5))")
        XCTAssertLessThan(lastMean, 0.08, "loss not near zero: \(losses.suffix(5))")
        if ProcessInfo.processInfo.environment["OVERFIT_VERBOSE"] != nil {
            let r = DetectorRunner(model: t.model)
            for s in t.validation!.samples {
                print(s.id, s.boxes, s.labels)
                for o in try r.detect(try ImageIO.read(s.image)) where o.score > 0.1 {
                    print("   ", o.name, o.score, o.corners.map { Int($0) })
                }
            }
        }
        let m = try XCTUnwrap(t.log.last { $0.mAP != nil }?.mAP)
        XCTAssertEqual(m, 1.0, accuracy: 1e-6)
        XCTAssertTrue(FileManager.default.fileExists(atPath: t.finalURL.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: d.appendingPathComponent("run/loss.png").path))
    }
}

final class FinetuneMechanicsTests: XCTestCase {
    func dir() -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ftm-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    /// Kill after 3 iterations, resume from the checkpoint: the same weights and momentum as an
    /// uninterrupted 6-iteration run (flip augmentation on, 2 images per iteration: crosses an epoch).
    func testResumeGivesIdenticalWeights() throws {
        let d = dir()
        try writeTinyVOC(d.appendingPathComponent("voc"))
        var cfg = tinyFinetuneConfig(d.appendingPathComponent("voc"))
        cfg.solver.iterations = 6; cfg.solver.imsPerBatch = 2; cfg.solver.checkpointEvery = 3; cfg.data.valSplit = ""
        var full = FinetuneOptions(outDir: d.appendingPathComponent("a")); full.quiet = true
        let a = try DetectorTrainer(config: cfg, options: full)
        try a.run()
        var first = FinetuneOptions(outDir: d.appendingPathComponent("b")); first.quiet = true; first.stopAfter = 3
        try DetectorTrainer(config: cfg, options: first).run()
        var second = FinetuneOptions(outDir: d.appendingPathComponent("b")); second.quiet = true
        second.resume = d.appendingPathComponent("b/checkpoint.safetensors")
        let b = try DetectorTrainer(config: cfg, options: second)
        XCTAssertEqual(b.iteration, 3)
        try b.run()
        for ((n, x), (_, y)) in zip(a.model.namedParameters(), b.model.namedParameters()) {
            XCTAssertEqual(x.scalars.map(\.bitPattern), y.scalars.map(\.bitPattern), n)
        }
        XCTAssertEqual(a.log.map(\.loss), b.log.map(\.loss))
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: d.appendingPathComponent("b/model_final.safetensors").path))
    }

    /// Finite differences of the whole detector loss (RPN + head, sampling fixed by seed) on a handful of
    /// parameters in every part of the network.
    func testDetectorLossGradient() throws {
        var c = DetectorConfig()
        c.backbone.depth = 18; c.backbone.widths = [4, 8, 8, 8]; c.backbone.stemWidth = 4; c.backbone.freezeAt = 0
        c.anchors.sizes = [16, 32]; c.anchors.aspectRatios = [1]
        c.rpn.preNmsTopKTrain = 50; c.rpn.postNmsTopKTrain = 20; c.rpn.batchSizePerImage = 16
        c.roi.batchSizePerImage = 8; c.roi.resolution = 4; c.roi.pooler = .roialign
        c.classNames = ["a", "b"]
        let m = try FasterRCNN(c, seed: 5)
        m.train()
        var rng = SeededRNG(seed: 3)
        let x = Tensor.randn([1, 3, 64, 64], rng: &rng)
        let target = TrainingTarget(boxes: Tensor([8, 8, 30, 34, 36, 20, 60, 50], shape: [2, 4]), labels: [1, 2])
        // Proposals fixed (as approximate joint training treats them): a grid of boxes over the image.
        var grid: [Float] = []
        for y in stride(from: 0, to: 56, by: 8) {
            for x0 in stride(from: 0, to: 56, by: 8) {
                grid += [Float(x0), Float(y), Float(x0 + 12 + y / 4), Float(y + 14 + x0 / 4)]
            }
        }
        let fixed = Tensor(grid, shape: [grid.count / 4, 4])
        func loss() -> Tensor {
            var r = SeededRNG(seed: 11); return m.losses(x, target: target, rng: &r, fixedProposals: fixed).0
        }
        let names = [
            "rpn.cls_logits.weight", "rpn.bbox_pred.weight", "rpn.conv.weight", "roi_heads.cls_score.weight",
            "roi_heads.bbox_pred.weight", "roi_heads.res5.1.conv2.weight", "backbone.layer3.0.conv1.weight",
            "backbone.conv1.weight"
        ]
        let checked = try checkDetectorGradients(m, names: names, loss)
        XCTAssertEqual(checked, 24)
    }

    /// RoI labels against a brute-force assignment: fg class at IoU >= 0.5, background in [lo, 0.5),
    /// ignored below lo; no-GT images are all background.
    func testRoILabelsAgainstBruteForce() throws {
        var c = DetectorConfig(); c.classNames = ["a", "b", "c"]; c.backbone.depth = 18; c.roi.bgIouLow = 0.1
        let m = try FasterRCNN(c)
        var rng = SeededRNG(seed: 8)
        for _ in 0..<20 {
            let g = rng.int(below: 4), p = 1 + rng.int(below: 30)
            func box() -> [Float] {
                let x = rng.uniform(0, 80), y = rng.uniform(0, 80);
                return [x, y, x + rng.uniform(2, 40), y + rng.uniform(2, 40)]
            }
            let gt = (0..<g).map { _ in box() }, props = (0..<p).map { _ in box() }
            let labels = (0..<g).map { _ in 1 + rng.int(below: 3) }
            let (got, _) = m.roiHeads.labels(
                proposals: Tensor(props.flatMap { $0 }, shape: [p, 4]),
                target: TrainingTarget(boxes: Tensor(gt.flatMap { $0 }, shape: [g, 4]), labels: labels))
            for j in 0..<p {
                var best: Float = -1, bi = -1
                for i in 0..<g {
                    let a = gt[i], b = props[j]
                    let iw = max(0, min(a[2], b[2]) - max(a[0], b[0])), ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
                    let inter = iw * ih, u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                    let iou = inter > 0 ? inter / u : 0
                    if iou > best { best = iou; bi = i }
                }
                let want = g == 0 ? -1 : (best >= 0.5 ? labels[bi] : (best >= 0.1 ? 0 : -1))
                XCTAssertEqual(got[j], want, "proposal \(j), best IoU \(best)")
            }
        }
    }

    /// Bad input: malformed XML, a missing image, a zero-size box, an empty split, a backbone of another
    /// depth: clear messages naming the file, nothing written.
    func testBadFinetuneInput() throws {
        let d = dir()
        let voc = d.appendingPathComponent("voc")
        try writeTinyVOC(voc)
        let out = d.appendingPathComponent("out")
        func trainer(_ cfg: FinetuneConfig, backbone: URL? = nil) throws -> DetectorTrainer {
            var o = FinetuneOptions(outDir: out); o.quiet = true; o.backbone = backbone
            return try DetectorTrainer(config: cfg, options: o)
        }
        let cfg = tinyFinetuneConfig(voc)
        // A backbone checkpoint of another architecture.
        let r50 = d.appendingPathComponent("r.safetensors")
        try ResNet(try ResNetConfig.named("resnet18")).save(to: r50)
        XCTAssertThrowsError(try trainer(cfg, backbone: r50)) { e in
            XCTAssertTrue("\(e)".contains("mis-shaped") && "\(e)".contains(r50.path), "\(e)")
        }
        // Zero-size box.
        let xml = voc.appendingPathComponent("Annotations/000001.xml")
        let good = try String(contentsOf: xml, encoding: .utf8)
        try good.replacingOccurrences(of: "<xmax>", with: "<xmax>-").write(to: xml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try trainer(cfg)) { e in
            XCTAssertTrue("\(e)".contains("000001.xml") && "\(e)".contains("zero or negative size"), "\(e)")
        }
        var drop = cfg; drop.data.invalidBoxes = .drop
        XCTAssertEqual(try trainer(drop).data.samples[1].boxes.count, 0)
        // Malformed XML.
        try "<annotation><object><name>box</name>".write(to: xml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try trainer(cfg)) { e in XCTAssertTrue("\(e)".contains("000001.xml"), "\(e)") }
        try good.write(to: xml, atomically: true, encoding: .utf8)
        // Missing image.
        try FileManager.default.removeItem(at: voc.appendingPathComponent("JPEGImages/000002.png"))
        XCTAssertThrowsError(try trainer(cfg)) { e in XCTAssertTrue("\(e)".contains("000002"), "\(e)") }
        // Empty split.
        try "".write(to: voc.appendingPathComponent("ImageSets/Main/trainval.txt"), atomically: true, encoding: .utf8)
        var noVal = cfg; noVal.data.valSplit = ""
        XCTAssertThrowsError(try trainer(noVal)) { e in XCTAssertTrue("\(e)".contains("no images"), "\(e)") }
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.safetensors").path))
    }
}

final class DivergenceTests: XCTestCase {
    /// A diverged network (non-finite RPN outputs) gives a non-finite RPN loss (the others stay finite), and
    /// inference ranks NaN objectness last instead of stopping: every detection it returns is finite.
    func testNonFiniteRPNOutputsAreReportedNotCrashing() throws {
        var c = DetectorConfig()
        c.backbone.depth = 18; c.backbone.widths = [4, 8, 8, 8]; c.backbone.stemWidth = 4
        c.anchors.sizes = [16, 32]; c.classNames = ["a"]
        let m = try FasterRCNN(c, seed: 1)
        m.rpn.head.clsLogits.bias!.fill(.nan)
        var rng = SeededRNG(seed: 1)
        let x = Tensor.randn([1, 3, 64, 64], rng: &rng)
        let (_, parts) = m.losses(
            x, target: TrainingTarget(boxes: Tensor([4, 4, 30, 30], shape: [1, 4]), labels: [1]), rng: &rng)
        XCTAssertTrue(parts.rpnCls.isNaN, "the objectness loss carries the NaN")
        XCTAssertTrue(parts.rpnBox.isFinite && parts.roiCls.isFinite && parts.roiBox.isFinite, "\(parts)")
        XCTAssertFalse(parts.total.isFinite)
        var img = RGBImage(width: 64, height: 64, fill: (10, 200, 30))
        img.fillRect(x: 10, y: 10, width: 20, height: 20, color: (200, 0, 0))
        let r = DetectorRunner(model: m)
        r.config.input.minSize = 0
        r.config.test.scoreThreshold = 0
        let found = try r.detect(img)
        XCTAssertFalse(found.isEmpty, "proposals still reach the box head")
        XCTAssert(found.allSatisfy { $0.score.isFinite && $0.corners.allSatisfy(\.isFinite) }, "\(found.prefix(3))")
    }

    /// Proposal selection with NaN objectness: the NaN anchors are ranked after every finite one (and get
    /// -inf), the finite ones keep their order.
    func testNaNObjectnessRanksLast() {
        let a = 6
        let anchors = Tensor(
            (0..<a).flatMap { i -> [Float] in
                let x = Float(i) * 40; return [x, 0, x + 30, 30]
            }, shape: [a, 4])
        let logits: [Float] = [0.5, .nan, 2, .nan, -1, 1]
        let out = AnchorOutputs(logits: Tensor(logits, shape: [1, a, 1, 1]), deltas: Tensor(zeros: [1, 4 * a, 1, 1]))
        let pick = ProposalGenerator(preNmsTopK: 6, postNmsTopK: 6, nmsThreshold: 0.7, minSize: 0)
        let (boxes, scores) = pick(out, anchors: anchors, imageSize: (height: 100, width: 400))
        XCTAssertEqual(Array(scores.prefix(4)), [2, 1, 0.5, -1])
        XCTAssertEqual(scores.count, 6)
        XCTAssert(scores.suffix(2).allSatisfy { $0 == -.infinity }, "\(scores)")
        XCTAssertEqual(boxes.data[0], 80, "the best box is anchor 2's")
        let top3 = ProposalGenerator(preNmsTopK: 3, postNmsTopK: 3, nmsThreshold: 0.7, minSize: 0)(
            out, anchors: anchors, imageSize: (100, 400))
        XCTAssertEqual(top3.scores, [2, 1, 0.5], "a NaN never displaces a finite score")
    }

    /// `finetune` stops at the first non-finite loss with a message naming the iteration and the images, and
    /// writes no final model.
    func testTrainerStopsAtANonFiniteLoss() throws {
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("diverge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        try writeTinyVOC(d.appendingPathComponent("voc"))
        var cfg = tinyFinetuneConfig(d.appendingPathComponent("voc"))
        cfg.solver.lr = 1000; cfg.solver.warmupIterations = 0; cfg.solver.iterations = 20
        cfg.data.valSplit = ""
        var o = FinetuneOptions(outDir: d.appendingPathComponent("run"))
        o.quiet = true
        let t = try DetectorTrainer(config: cfg, options: o)
        XCTAssertThrowsError(try t.run()) { e in
            let text = "\(e)"
            XCTAssert(
                text.contains("the loss is not finite") && text.contains("iteration ") && text.contains("JPEGImages/"),
                text)
        }
        XCTAssertLessThan(t.log.count, 20, "stopped early")
        XCTAssert(t.log.allSatisfy { $0.loss?.isFinite ?? true }, "no non-finite loss was logged")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: d.appendingPathComponent("run/model_final.safetensors").path))
    }
}
