import Evaluation
import Foundation
import XCTest

/// COCO evaluation against pycocotools' answers (scripts/fixtures/coco_eval_fixtures.py).
final class COCOEvalTests: XCTestCase {
    let folder = fixtures.appendingPathComponent("coco")

    func testAllTwelveNumbersAndPerClassAPMatchPycocotools() throws {
        for (name, c) in try expectedCases(folder, minimum: 20) {
            let gt = try COCOGroundTruth.load(folder.appendingPathComponent("\(name).gt.json"))
            let dets = try DetectionsFile.load(folder.appendingPathComponent("\(name).dets.json"), index: gt.index)
            XCTAssertEqual(dets.detections.count, c["detections"] as? Int, name)
            let result = evaluateCOCO(gt, dets.detections)
            let stats = c["stats"] as! [Double]
            for (i, (ours, theirs)) in zip(result.summary.values, stats).enumerated() {
                XCTAssertClose(ours, theirs, "\(name) \(COCOSummary.names[i])")
            }
            let perClass = c["per_class"] as! [String: Double]
            for (k, category) in gt.categories.enumerated() {
                XCTAssertClose(
                    result.averagePrecision(category: k), perClass[String(category.id)]!,
                    "\(name) category \(category.id)")
            }
        }
    }

    func testStandardParametersAreBitIdenticalToPycocotools() throws {
        let expected = try loadJSONObject(folder.appendingPathComponent("expected.json")) as! [String: Any]
        // Stored as Python repr strings; Double(String) is correctly rounded.
        XCTAssertEqual(COCOParameters.standard.iouThresholds, (expected["iouThrs"] as! [String]).map { Double($0)! })
        XCTAssertEqual(COCOParameters.standard.recallThresholds, (expected["recThrs"] as! [String]).map { Double($0)! })
        XCTAssertEqual(COCOParameters.standard.maxDetections, [1, 10, 100])
    }
}
