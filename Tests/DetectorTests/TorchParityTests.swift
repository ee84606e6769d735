import XCTest
import TestSupport
import Foundation
import Engine
import NN
import Imaging
import Detection
import Detector

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

}
