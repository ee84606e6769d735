import XCTest
import Foundation
import Engine
import NN
import Imaging
import Detection
import Detector

/// Batched fine-tuning: several images in one padded forward pass, and aspect-ratio grouping.
final class BatchTrainingTests: XCTestCase {
    func tinyModel() throws -> FasterRCNN {
        var c = DetectorConfig()
        c.backbone.depth = 18; c.backbone.widths = [4, 8, 8, 8]; c.backbone.stemWidth = 4; c.backbone.freezeAt = 0
        c.anchors.sizes = [16, 32]; c.anchors.aspectRatios = [0.5, 1]
        c.rpn.preNmsTopKTrain = 60; c.rpn.postNmsTopKTrain = 20; c.rpn.batchSizePerImage = 16
        c.roi.batchSizePerImage = 8; c.roi.resolution = 4; c.roi.pooler = .roialign
        c.classNames = ["a", "b"]
        let m = try FasterRCNN(c, seed: 5)
        m.train()
        return m
    }

    let targets = [
        TrainingTarget(boxes: Tensor([8, 8, 30, 34, 36, 20, 60, 50], shape: [2, 4]), labels: [1, 2]),
        TrainingTarget(boxes: Tensor([4, 30, 40, 60], shape: [1, 4]), labels: [2])
    ]

    func grads(_ m: FasterRCNN) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.namedParameters().compactMap { n, p in p.grad.map { (n, $0.scalars) } })
    }

    /// Two images of one size in one pass give the mean of the two single-image losses (same sampling
    /// streams), and the same gradients as accumulating the two single-image passes with weight 1/2.
    func testBatchedPassEqualsAccumulation() throws {
        let m = try tinyModel()
        var rng = SeededRNG(seed: 3)
        let xs = [Tensor.randn([1, 3, 64, 64], rng: &rng), Tensor.randn([1, 3, 64, 64], rng: &rng)]
        // Accumulated single-image passes.
        m.zeroGrad()
        var single = LossBreakdown()
        for b in 0..<2 {
            var r = SeededRNG(seed: 11 + UInt64(b))
            let (loss, p) = m.losses(xs[b], target: targets[b], rng: &r)
            scale(loss, 0.5).backward()
            single.rpnCls += p.rpnCls / 2; single.rpnBox += p.rpnBox / 2; single.roiCls += p.roiCls / 2;
            single.roiBox += p.roiBox / 2
        }
        let want = grads(m)
        // One batched pass.
        m.zeroGrad()
        var rngs = [SeededRNG(seed: 11), SeededRNG(seed: 12)]
        let (loss, p) = m.losses(Preprocess.batch(xs), targets: targets, imageSizes: [(64, 64), (64, 64)], rngs: &rngs)
        loss.backward()
        XCTAssertGreaterThan(p.roiBox, 0); XCTAssertGreaterThan(p.rpnBox, 0)
        XCTAssertEqual(loss.item(), single.total, accuracy: 1e-5 * single.total)
        for (a, b) in [
            (p.rpnCls, single.rpnCls), (p.rpnBox, single.rpnBox), (p.roiCls, single.roiCls), (p.roiBox, single.roiBox)
        ] {
            XCTAssertEqual(a, b, accuracy: 1e-5 * max(b, 1e-3))
        }
        let got = grads(m)
        XCTAssertEqual(Set(got.keys), Set(want.keys))
        for (name, g) in got {
            let w = want[name]!
            let scaleMax = w.map(abs).max() ?? 0
            for i in g.indices { XCTAssertEqual(g[i], w[i], accuracy: 1e-4 * scaleMax + 1e-7, "\(name)[\(i)]") }
        }
    }

    /// Images of different sizes: padded to one batch (each at the top-left of its slot), and the batched
    /// loss's gradient agrees with finite differences (fixed proposals, sampling fixed by seed).
    func testPaddedBatchGradient() throws {
        var rng = SeededRNG(seed: 4)
        let a = Tensor.randn([1, 3, 48, 64], rng: &rng), b = Tensor.randn([1, 3, 64, 40], rng: &rng)
        let x = Preprocess.batch([a, b])
        XCTAssertEqual(x.shape, [2, 3, 64, 64])
        XCTAssertEqual(x.data[(0 * 3 + 2) * 64 * 64 + 47 * 64 + 63], a.data[2 * 48 * 64 + 47 * 64 + 63])
        XCTAssertEqual(x.data[(0 * 3 + 1) * 64 * 64 + 50 * 64 + 10], 0)
        XCTAssertEqual(x.data[(1 * 3 + 1) * 64 * 64 + 63 * 64 + 39], b.data[1 * 64 * 40 + 63 * 40 + 39])
        XCTAssertEqual(x.data[(1 * 3 + 0) * 64 * 64 + 5 * 64 + 50], 0)

        let m = try tinyModel()
        let t = [
            TrainingTarget(boxes: Tensor([8, 8, 30, 34, 36, 20, 60, 44], shape: [2, 4]), labels: [1, 2]),
            TrainingTarget(boxes: Tensor([4, 30, 36, 60], shape: [1, 4]), labels: [2])
        ]
        func grid(_ w: Int, _ h: Int) -> Tensor {
            var g: [Float] = []
            for y in stride(from: 0, to: h - 16, by: 9) {
                for x0 in stride(from: 0, to: w - 16, by: 9) {
                    g += [Float(x0), Float(y), Float(x0 + 12 + y / 4), Float(y + 14 + x0 / 4)]
                }
            }
            return Tensor(g, shape: [g.count / 4, 4])
        }
        let fixed = [grid(64, 48), grid(40, 64)]
        func loss() -> Tensor {
            var rngs = [SeededRNG(seed: 21), SeededRNG(seed: 22)]
            return m.losses(x, targets: t, imageSizes: [(48, 64), (64, 40)], rngs: &rngs, fixedProposals: fixed).0
        }
        let checked = try checkDetectorGradients(
            m,
            names: [
                "rpn.cls_logits.weight", "rpn.bbox_pred.weight", "roi_heads.cls_score.weight",
                "roi_heads.bbox_pred.weight", "roi_heads.res5.0.conv1.weight",
                "backbone.layer2.0.conv1.weight"
            ], loss)
        XCTAssertEqual(checked, 18)
    }

    /// Aspect-ratio grouping: every epoch uses each image exactly once, all batches but the last mixed one
    /// hold a single orientation, and the batches are a pure function of (seed, epoch).
    func testAspectRatioGrouping() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("arg-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: root) }
        let voc = root.appendingPathComponent("voc")
        try writeTinyVOC(voc, images: 11)
        // Make images 1, 4, 5, 8 portrait (the grouping reads the size from the file).
        let portrait = Set([1, 4, 5, 8])
        for i in portrait {
            try ImageIO.writePNG(
                RGBImage(width: 128, height: 160, fill: (90, 90, 90)),
                to: voc.appendingPathComponent(String(format: "JPEGImages/%06d.png", i)))
        }
        var cfg = tinyFinetuneConfig(voc)
        cfg.solver.imsPerBatch = 3; cfg.data.valSplit = ""
        var o = FinetuneOptions(outDir: root.appendingPathComponent("run")); o.quiet = true
        let t = try DetectorTrainer(config: cfg, options: o)
        let idOf = t.data.samples.map { Int($0.id)! }
        // 7 landscape -> 2 full batches + 1 left; 4 portrait -> 1 full + 1 left; the 2 left make one batch:
        // 4 per epoch.
        let perEpoch = 4
        var mixedSeen = 0
        for epoch in 0..<3 {
            let batches = (0..<perEpoch).map { t.batchIndices(epoch * perEpoch + $0) }
            XCTAssertEqual(batches.joined().sorted(), Array(0..<11), "epoch \(epoch)")
            for b in batches {
                let kinds = Set(b.map { portrait.contains(idOf[$0]) })
                if kinds.count > 1 { mixedSeen += 1; XCTAssertEqual(b.count, 2) } else { XCTAssertEqual(b.count, 3) }
            }
            if epoch == 1 {
                XCTAssertNotEqual(batches, (0..<perEpoch).map { t.batchIndices($0) }, "epochs are reshuffled")
            }
        }
        XCTAssertEqual(mixedSeen, 3)
        let again = try DetectorTrainer(config: cfg, options: o)
        XCTAssertEqual((0..<12).map { again.batchIndices(11 - $0) }, (0..<12).map { t.batchIndices(11 - $0) })
        // Without grouping: consecutive slots of the per-epoch permutation.
        var plain = cfg; plain.solver.aspectRatioGrouping = false
        let u = try DetectorTrainer(config: plain, options: o)
        XCTAssertEqual(u.batchIndices(1), [u.sampleIndex(3), u.sampleIndex(4), u.sampleIndex(5)])
    }
}
