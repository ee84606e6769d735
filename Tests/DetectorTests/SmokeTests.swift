import XCTest
import Detection
import Foundation
import Engine
import NN
import Imaging
import Detector
import Support

final class DetectorSmokeTests: XCTestCase {
    func smallConfig() -> DetectorConfig {
        var c = DetectorConfig()
        c.backbone.depth = 18
        c.anchors.sizes = [32, 64, 128]
        c.input.minSize = 192; c.input.maxSize = 320
        c.rpn.preNmsTopKTest = 1000; c.rpn.postNmsTopKTest = 100
        c.classNames = ["a", "b", "c"]
        return c
    }

    /// Every config key survives the YAML/JSON snake_case round trip (a key that does not would be
    /// impossible to set from a recipe).
    func testConfigRoundTrips() throws {
        let c = smallConfig()
        XCTAssertEqual(try Recipe.load(c, file: nil), c)
        XCTAssertEqual(
            try Recipe.load(
                DetectorConfig(), file: nil, overrides: ["roi.bg_iou_low=0.1", "backbone.stride_in_first_conv=true"]
            ).roi.bgIouLow, 0.1)
        XCTAssertThrowsError(try Recipe.load(c, file: nil, overrides: ["rpn.fg_iou_threshold=0.5"]))
    }

    /// A checkpoint alone is enough to run the detector: names, config and classes round-trip.
    func testCheckpointRoundTripAndNames() throws {
        let m = try FasterRCNN(smallConfig(), seed: 3)
        let names = Set(m.namedParameters().map { $0.0 })
        for n in [
            "backbone.conv1.weight", "backbone.bn1.weight", "backbone.layer3.1.conv2.weight", "rpn.conv.weight",
            "rpn.cls_logits.bias", "rpn.bbox_pred.weight", "roi_heads.res5.0.downsample.0.weight",
            "roi_heads.res5.1.bn2.bias", "roi_heads.cls_score.weight", "roi_heads.bbox_pred.bias"
        ] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertFalse(names.contains { $0.contains("fc.") || $0.contains("layer4") })
        XCTAssertEqual(m.rpn.head.clsLogits.weight.shape, [9, 256, 1, 1])
        XCTAssertEqual(m.roiHeads.predictor.bboxPred.weight.shape, [16, 512])
        // Frozen batch norm everywhere; stem and layer1 frozen (freeze_at 2).
        XCTAssertFalse(m.backbone.conv1.weight.requiresGrad)
        XCTAssertTrue(
            m.namedParameters().filter { $0.0.hasPrefix("backbone.layer1.") }.allSatisfy { !$0.1.requiresGrad })
        XCTAssertTrue(
            m.namedParameters().filter { $0.0.hasPrefix("backbone.layer2.") && $0.0.contains("conv") }.allSatisfy {
                $0.1.requiresGrad
            })
        XCTAssertTrue(m.namedParameters().filter { $0.0.contains(".bn") }.allSatisfy { !$0.1.requiresGrad })

        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("det-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("d.safetensors")
        try m.save(to: url, metadata: m.metadata)
        let r = try DetectorRunner(checkpoint: url)
        XCTAssertEqual(r.config, m.config)
        var img = RGBImage(width: 200, height: 150, fill: (90, 120, 160))
        img.fillRect(x: 40, y: 30, width: 60, height: 50, color: (230, 40, 40))
        let a = try r.detect(img)
        let b = try DetectorRunner(model: m).detect(img)
        XCTAssertEqual(a, b)
        for o in a {
            XCTAssertTrue(
                o.corners[0] >= 0 && o.corners[2] <= 200 && o.corners[1] >= 0 && o.corners[3] <= 150
                    && o.corners[0] <= o.corners[2], "\(o)")
            XCTAssertTrue((1...3).contains(o.label) && o.score > 0.05)
        }
        XCTAssertLessThanOrEqual(a.count, 100)
    }
}

final class DetectorRecipeTests: XCTestCase {
    /// Every shipped detector recipe parses and validates.
    func testRecipesParse() throws {
        let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs")
        var n = 0
        for f in try FileManager.default.contentsOfDirectory(atPath: configs.path) where f.hasPrefix("detector_") {
            var c = try Recipe.load(FinetuneConfig(), file: configs.appendingPathComponent(f))
            c.detector.classNames = ["x"]
            XCTAssertNoThrow(try c.validate(), f)
            XCTAssertNoThrow(try c.detector.validate(), f)
            n += 1
        }
        XCTAssertGreaterThanOrEqual(n, 4)
    }
}
