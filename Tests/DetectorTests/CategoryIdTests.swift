import XCTest
import Detection
import DetectionReport
import Foundation
import Engine
import Detector
import Evaluation

/// Data-set category ids (COCO's have gaps) travel from the annotations through the checkpoint to the
/// results JSON; checkpoints written before a config key existed still load.
final class CategoryIdTests: XCTestCase {
    func testCOCOCategoryIdsReachResults() throws {
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        let json = """
            {"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 90, "bbox": [1, 2, 10, 10], "iscrowd": 0},
                             {"id": 2, "image_id": 1, "category_id": 13, "bbox": [5, 5, 10, 12], "iscrowd": 0}],
             "categories": [{"id": 90, "name": "toothbrush"}, {"id": 13, "name": "stop sign"}, {"id": 1, \
             "name": "person"}]}
            """
        let file = d.appendingPathComponent("instances.json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        let ds = try DetectionDataset.coco(annotations: file, images: d, invalidBoxes: .reject)
        XCTAssertEqual(ds.classNames, ["person", "stop sign", "toothbrush"])
        XCTAssertEqual(ds.categoryIds, [1, 13, 90])
        XCTAssertEqual(ds.samples[0].labels, [3, 2])
        XCTAssertEqual(ds.samples[0].width, 40)

        var c = DetectorConfig(); c.backbone.depth = 18; c.classNames = ds.classNames; c.categoryIds = ds.categoryIds!
        XCTAssertEqual((1...3).map { c.categoryId(label: $0) }, [1, 13, 90])
        let objs = [DetectedObject(corners: [1, 2, 11, 12], score: 0.9, label: 3, name: "toothbrush")]
        let r = DetectionOutput.cocoResults(objs, imageID: 1, categoryId: c.categoryId(label:))
        XCTAssertEqual(r[0]["category_id"] as? Int, 90)
        XCTAssertEqual(r[0]["bbox"] as? [Double], [1, 2, 10, 10])
        // Without ids: the label.
        XCTAssertEqual(DetectorConfig().categoryId(label: 3), 3)
        // Bad ids are refused.
        var bad = c; bad.categoryIds = [1, 13]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("category_ids"), "\($0)") }
        bad.categoryIds = [1, 13, 13]
        XCTAssertThrowsError(try bad.validate())

        // The ids survive a checkpoint round trip through the metadata.
        let m = try FasterRCNN(c)
        XCTAssertEqual(try FasterRCNN.config(from: m.metadata, file: "x").categoryIds, [1, 13, 90])
    }

    /// A checkpoint whose stored config lacks keys added later loads with their defaults; unknown keys
    /// are refused with the file's name.
    func testOlderCheckpointConfigLoads() throws {
        var c = DetectorConfig(); c.backbone.depth = 18; c.classNames = ["a"]; c.input.minSize = 320
        let meta = try FasterRCNN(c).metadata
        var tree = try JSONSerialization.jsonObject(with: Data(meta["detector_config"]!.utf8)) as! [String: Any]
        tree["category_ids"] = nil
        var rpn = tree["rpn"] as! [String: Any]; rpn["nms_threshold"] = nil; tree["rpn"] = rpn
        let old = String(decoding: try JSONSerialization.data(withJSONObject: tree), as: UTF8.self)
        let loaded = try FasterRCNN.config(from: ["detector_config": old], file: "old.safetensors")
        XCTAssertEqual(loaded.input.minSize, 320)
        XCTAssertEqual(loaded.categoryIds, [])
        XCTAssertEqual(loaded.rpn.nmsThreshold, DetectorConfig().rpn.nmsThreshold)
        tree["bogus"] = 1
        let bad = String(decoding: try JSONSerialization.data(withJSONObject: tree), as: UTF8.self)
        XCTAssertThrowsError(try FasterRCNN.config(from: ["detector_config": bad], file: "old.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("old.safetensors") && "\(e)".contains("bogus"), "\(e)")
        }
    }
}

/// `DetectionOutput.check` (behind `detect --expect`): found / missed / false positive on hand-made cases.
final class AnnotationCheckTests: XCTestCase {
    func testCheck() {
        let gt = [
            VOCObject(name: "star", box: BoxCorners(xmin: 10, ymin: 10, xmax: 50, ymax: 50)),
            VOCObject(name: "ring", box: BoxCorners(xmin: 100, ymin: 20, xmax: 140, ymax: 80)),
            VOCObject(name: "ring", box: BoxCorners(xmin: 0, ymin: 100, xmax: 10, ymax: 110), difficult: true)
        ]
        func det(_ n: String, _ s: Float, _ b: [Float]) -> DetectedObject {
            DetectedObject(corners: b, score: s, label: 1, name: n)
        }
        // IoU of [12,10,50,50] with the star: 38*40 / (40*40) = 0.95; [100,20,140,60] with the ring: 0.667.
        let good = [
            det("star", 0.9, [12, 10, 50, 50]), det("ring", 0.8, [100, 25, 140, 80]), det("heart", 0.3, [0, 0, 5, 5])
        ]
        let c = DetectionOutput.check(good, against: gt)
        XCTAssertTrue(c.passed, c.summary(minIoU: 0.7, fpScore: 0.5)); XCTAssertEqual(c.objects, 2)
        let loose = [det("star", 0.9, [12, 10, 50, 50]), det("ring", 0.8, [100, 20, 140, 60])]
        let l = DetectionOutput.check(loose, against: gt)
        XCTAssertEqual(l.missed.map(\.object.name), ["ring"]);
        XCTAssertEqual(l.missed[0].bestIoU, 40 * 40 / Float(40 * 60), accuracy: 1e-6)
        XCTAssertTrue(l.falsePositives.isEmpty)  // IoU 0.667 >= 0.5: not a false positive
        XCTAssertTrue(DetectionOutput.check(loose, against: gt, minIoU: 0.6).passed)
        let wrongClass = [
            det("star", 0.9, [12, 10, 50, 50]), det("ring", 0.8, [100, 25, 140, 80]),
            det("heart", 0.6, [12, 10, 50, 50])
        ]
        let w = DetectionOutput.check(wrongClass, against: gt)
        XCTAssertEqual(w.falsePositives.map(\.name), ["heart"]); XCTAssertTrue(w.missed.isEmpty);
        XCTAssertFalse(w.passed)
        XCTAssertTrue(w.summary(minIoU: 0.7, fpScore: 0.5).contains("false positive heart"))
    }
}
