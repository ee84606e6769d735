import XCTest
import TestSupport
import Foundation
import Engine
import NN
import Imaging
import Detection
import Detector
import ResNet

/// The fixture script's weight formula (scripts/fixtures/resnet_fixtures.py, rules extended to detector
/// names in scripts/fixtures/detector_fixtures.py).
enum DetectorFormula {
    static func fnv(_ s: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261; for b in s.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }; return h
    }
    static func mix(_ v: UInt32) -> UInt32 {
        var x = v; x ^= x >> 16; x = x &* 0x7feb_352d; x ^= x >> 15; x = x &* 0x846c_a68b; x ^= x >> 16; return x
    }
    static func fill(_ name: String, _ t: Tensor) {
        let (scale, offset): (Double, Double)
        if name.hasSuffix(".running_mean") {
            (scale, offset) = (0.1, 0)
        } else if name.hasSuffix(".running_var") {
            (scale, offset) = (0.25, 1.25)
        } else if name.hasSuffix(".weight") && t.rank == 4 {
            (scale, offset) = (3.0.squareRoot() * (2.0 / Double(t.shape[1] * t.shape[2] * t.shape[3])).squareRoot(), 0)
        } else if name.hasSuffix(".weight") && t.rank == 2 {
            (scale, offset) = (3.0.squareRoot() / Double(t.shape[1]).squareRoot(), 0)
        } else if name.hasSuffix(".weight") {
            (scale, offset) = (0.2, 1)
        } else {
            (scale, offset) = (0.1, 0)
        }
        let h = fnv(name)
        for i in 0..<t.count {
            let u = Double(mix(h &+ UInt32(truncatingIfNeeded: i) &* 0x9E37_79B9)) / 4_294_967_296.0 * 2.0 - 1.0
            t.data[i] = Float(u * scale + offset)
        }
    }
}

final class DetectorTorchParityTests: XCTestCase {
    /// A full forward of a ResNet-18-C4 detector with fixed weights gives the proposals, head outputs and
    /// detections of the plain-PyTorch reference (scripts/fixtures/detector_fixtures.py).
    func testFullForwardMatchesReference() throws {
        var c = DetectorConfig()
        c.backbone.depth = 18
        c.anchors.sizes = [32, 64, 128]
        c.input.minSize = 192; c.input.maxSize = 320
        c.rpn.preNmsTopKTest = 1000; c.rpn.postNmsTopKTest = 100
        c.roi.pooler = .roipool; c.roi.resolution = 14
        c.classNames = ["a", "b", "c"]
        let model = try FasterRCNN(c)
        for (n, t) in model.namedParameters() + model.namedBuffers() { DetectorFormula.fill(n, t) }
        let ref = try SafeTensorsFile(contentsOf: fixtureURL("detector_forward.safetensors"))
        let runner = DetectorRunner(model: model)
        let image = try ImageIO.read(fixtureURL("image.png"))
        let prepared = try Preprocess.prepare(image, input: c.input)
        XCTAssertEqual(prepared.tensor.shape, [1, 3, 192, 256])

        try GradMode.withoutGrad {
            let features = model.backbone(prepared.tensor)
            XCTAssertEqual(features.shape, [1, 256, 12, 16])
            assertClose(features, try ref.tensor("features"), rtol: 1e-4, atol: 0, "trunk features, value by value")
            let fsum = features.scalars.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(fsum, Double(try ref.tensor("features_sum").item()), accuracy: 1e-4 * abs(fsum))
            let (logits, deltas) = model.rpn(features)
            assertClose(logits, try ref.tensor("rpn_logits"), rtol: 1e-4, atol: 0, "rpn logits")
            assertClose(deltas, try ref.tensor("rpn_deltas"), rtol: 1e-4, atol: 0, "rpn deltas")
            let anchors = model.rpn.anchorGenerator.anchors(featureHeight: 12, featureWidth: 16)
            XCTAssertEqual(anchors.scalars, try ref.tensor("anchors").scalars)
        }
        let trace = GradMode.withoutGrad { runner.run(prepared) }
        let proposals = try ref.tensor("proposals")
        XCTAssertEqual(trace.proposals.shape, proposals.shape)
        assertClose(trace.proposals, proposals, rtol: 0, atol: 0.02, "proposals (in order)")
        assertClose(
            Tensor(trace.proposalScores, shape: [trace.proposalScores.count]), try ref.tensor("proposal_scores"),
            rtol: 1e-4, atol: 0, "proposal scores")
        assertClose(trace.classLogits, try ref.tensor("class_logits"), rtol: 1e-4, atol: 0, "class logits")
        assertClose(trace.boxDeltas, try ref.tensor("box_deltas"), rtol: 1e-4, atol: 0, "box deltas")
        let boxes = try ref.tensor("det_boxes"), scores = try ref.tensor("det_scores").scalars,
            labels = try ref.integers("det_labels")
        XCTAssertEqual(trace.objects.count, scores.count)
        for (k, o) in trace.objects.enumerated() where k < scores.count {
            XCTAssertEqual(o.label, Int(labels[k]))
            XCTAssertEqual(o.score, scores[k], accuracy: 1e-4)
            for j in 0..<4 { XCTAssertEqual(o.corners[j], boxes.data[4 * k + j], accuracy: 0.02, "detection \(k)") }
        }
    }

    /// The channels-last inference path (trunk, RPN head with its stacked 1x1 convolutions, channels-last RoI
    /// pooling and res5 head, on every instruction-set path) against the reference path of the training code:
    /// the same proposals and scores, class logits and box deltas within 1e-4 of the largest, the same detections;
    /// with RoIAlign (the default pooler) and RoI max pooling.
    func testChannelsLastPathMatchesReferencePath() throws {
        InferencePath.atBaseline = true  // the portable loops too
        defer { InferencePath.channelsLast = true; InferencePath.atBaseline = false }
        for pooler in [RoIPoolerKind.roialign, .roipool] {
            var c = DetectorConfig()
            c.backbone.depth = 18
            c.anchors.sizes = [32, 64, 128]
            c.input.minSize = 192; c.input.maxSize = 320
            c.rpn.preNmsTopKTest = 1000; c.rpn.postNmsTopKTest = 100
            c.roi.pooler = pooler; c.roi.resolution = 14
            c.classNames = ["a", "b", "c"]
            let model = try FasterRCNN(c)
            for (n, t) in model.namedParameters() + model.namedBuffers() { DetectorFormula.fill(n, t) }
            let runner = DetectorRunner(model: model)
            let prepared = try Preprocess.prepare(try ImageIO.read(fixtureURL("image.png")), input: c.input)
            InferencePath.channelsLast = false
            let ref = GradMode.withoutGrad { runner.run(prepared) }
            InferencePath.channelsLast = true
            try onEveryKernelPath { level in
                XCTAssertTrue(GradMode.withoutGrad { model.roiHeads.takesChannelsLast }, "\(level)")
                XCTAssertTrue(GradMode.withoutGrad { model.rpn.takesChannelsLast }, "\(level)")
                let fast = GradMode.withoutGrad { runner.run(prepared) }
                assertClose(fast.proposals, ref.proposals, rtol: 0, atol: 0.02, "\(pooler) proposals (\(level))")
                XCTAssertEqual(fast.proposalScores.count, ref.proposalScores.count)
                assertClose(fast.classLogits, ref.classLogits, rtol: 1e-4, atol: 0, "\(pooler) class logits (\(level))")
                assertClose(fast.boxDeltas, ref.boxDeltas, rtol: 1e-4, atol: 0, "\(pooler) box deltas (\(level))")
                XCTAssertEqual(fast.objects.count, ref.objects.count, "\(pooler) detections (\(level))")
                for (a, b) in zip(fast.objects, ref.objects) {
                    XCTAssertEqual(a.label, b.label)
                    XCTAssertEqual(a.score, b.score, accuracy: 1e-4)
                    for j in 0..<4 { XCTAssertEqual(a.corners[j], b.corners[j], accuracy: 0.02) }
                }
                if pooler == .roipool { XCTAssertFalse(fast.objects.isEmpty, "the parity fixture's detections") }
            }
        }
    }
}
