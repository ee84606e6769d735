import XCTest
import Detection
import DetectionReport
import Detector
import Evaluation

/// `detect --expect`'s check: only the detections that are drawn count, each claims one object, and a
/// duplicate, a wrong class or a loose box fails it.
final class DrawnDetectionCheckTests: XCTestCase {
    let circle = VOCObject(name: "circle", box: BoxCorners(xmin: 10, ymin: 10, xmax: 50, ymax: 50))
    let star = VOCObject(name: "star", box: BoxCorners(xmin: 100, ymin: 100, xmax: 140, ymax: 130))
    let hard = VOCObject(name: "ring", box: BoxCorners(xmin: 200, ymin: 10, xmax: 230, ymax: 40), difficult: true)

    func det(_ name: String, _ box: [Float], _ score: Float) -> DetectedObject {
        DetectedObject(corners: box, score: score, label: 1, name: name)
    }

    func testOnlyDrawnDetectionsCount() {
        let exactCircle = det("circle", [10, 10, 50, 50], 0.9), exactStar = det("star", [100, 100, 140, 130], 0.4)
        var c = DetectionOutput.check([exactCircle, exactStar], against: [circle, star, hard])
        XCTAssertEqual(c.objects, 2, "the difficult object need not be found")
        XCTAssertEqual(c.missed.map(\.object.name), ["star"], "found only by a detection below the drawing threshold")
        XCTAssertEqual(c.missed.first?.bestIoU, 0, "no drawn star at all")
        XCTAssertFalse(c.passed)
        c = DetectionOutput.check([exactCircle, exactStar], against: [circle, star, hard], minScore: 0.3)
        XCTAssertTrue(c.passed, c.summary(minIoU: 0.7, fpScore: 0.3))
    }

    func testDuplicatesWrongClassesAndLooseBoxesFail() {
        let good = [det("circle", [10, 10, 50, 50], 0.9), det("star", [100, 100, 140, 130], 0.8)]
        XCTAssertTrue(DetectionOutput.check(good, against: [circle, star]).passed)
        // A second, lower-scoring box on the same circle: a duplicate tag in the picture.
        let duplicate = det("circle", [12, 11, 50, 52], 0.6)
        var c = DetectionOutput.check(good + [duplicate], against: [circle, star])
        XCTAssertEqual(c.falsePositives, [duplicate])
        XCTAssertEqual(c.missed.count, 0)
        // The same duplicate below the drawing threshold is not drawn, so it does not count.
        XCTAssertTrue(
            DetectionOutput.check(good + [det("circle", [12, 11, 50, 52], 0.49)], against: [circle, star]).passed)
        // A star drawn on the circle: wrong class.
        let wrong = det("star", [10, 10, 50, 50], 0.7)
        c = DetectionOutput.check(good + [wrong], against: [circle, star])
        XCTAssertEqual(c.falsePositives, [wrong])
        // A box overlapping its object with IoU 0.5-0.7 claims it (no false positive) but does not find it.
        let loose = det("circle", [10, 10, 50, 80], 0.9)  // IoU 40*40 / (40*70) = 0.571
        c = DetectionOutput.check([loose, good[1]], against: [circle, star])
        XCTAssertEqual(c.falsePositives, [])
        XCTAssertEqual(c.missed.map(\.object.name), ["circle"])
        XCTAssertEqual(c.missed[0].bestIoU, 1600.0 / 2800.0, accuracy: 1e-6)
        // A detection on a difficult object is neither required nor wrong.
        XCTAssertTrue(
            DetectionOutput.check(good + [det("ring", [200, 10, 230, 40], 0.9)], against: [circle, star, hard]).passed)
    }
}
