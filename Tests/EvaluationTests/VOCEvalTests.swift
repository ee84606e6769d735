import Evaluation
import Foundation
import Detection
import XCTest

/// VOC evaluation against a numpy re-implementation of py-faster-rcnn's voc_eval
/// (scripts/fixtures/voc_eval_fixtures.py), and the VOCdevkit folder reader.
final class VOCEvalTests: XCTestCase {
    let folder = fixtures.appendingPathComponent("voc")
    let tiny = fixtures.appendingPathComponent("voc_tiny")

    /// Builds ground truth from a fixture's JSON (images, classes, objects per image).
    private func groundTruth(_ name: String) throws -> VOCGroundTruth {
        let json = try loadJSONObject(folder.appendingPathComponent("\(name).gt.json")) as! [String: Any]
        let images = json["images"] as! [String]
        let classes = json["classes"] as! [String]
        let perImage = json["objects"] as! [String: [[String: Any]]]
        var objects: [VOCGroundTruthObject] = []
        for (i, image) in images.enumerated() {
            for o in perImage[image] ?? [] {
                let b = (o["bbox"] as! [NSNumber]).map(\.doubleValue)  // small integers: exact
                objects.append(
                    VOCGroundTruthObject(
                        imageIndex: i, classIndex: classes.firstIndex(of: o["name"] as! String)!,
                        box: BoxCorners(xmin: b[0], ymin: b[1], xmax: b[2], ymax: b[3]),
                        difficult: (o["difficult"] as! Int) != 0))
            }
        }
        return VOCGroundTruth(imageIDs: images, classNames: classes, objects: objects)
    }

    func testElevenPointAndAreaAPMatchTheReferenceAtTwoThresholds() throws {
        for (name, c) in try expectedCases(folder, minimum: 10) {
            let gt = try groundTruth(name)
            let dets = try DetectionsFile.load(folder.appendingPathComponent("\(name).dets.json"), index: gt.index)
            XCTAssertEqual(dets.detections.count, c["detections"] as? Int)
            let answers = c["expected"] as! [String: [String: Any]]
            for threshold in [0.5, 0.7] {
                for metric in VOCMetric.allCases {
                    let key = "\(metric.rawValue)@\(threshold == 0.5 ? "0.5" : "0.7")"
                    let answer = answers[key]!
                    let result = evaluateVOC(gt, dets.detections, iouThreshold: threshold, metric: metric)
                    XCTAssertClose(result.mAP, answer["mAP"] as! Double, "\(name) \(key) mAP")
                    let perClass = answer["per_class"] as! [String: Double]
                    for r in result.classes {
                        XCTAssertClose(r.ap, perClass[r.name]!, "\(name) \(key) \(r.name)")
                    }
                }
            }
        }
    }

    func testAveragePrecisionByHand() {
        // Recall reaches 0.3 exactly: VOC07's "0.3" point is 0.30000000000000004 (np.arange), so it is missed.
        let recall = [0.1, 0.2, 0.3], precision = [1.0, 1.0, 1.0]
        XCTAssertEqual(
            vocAveragePrecision(recall: recall, precision: precision, metric: .voc07), 3.0 / 11, accuracy: 1e-12)
        XCTAssertEqual(vocAveragePrecision(recall: recall, precision: precision, metric: .voc), 0.3, accuracy: 1e-12)
        // Envelope: a later, higher precision lifts the earlier recall steps.
        XCTAssertEqual(
            vocAveragePrecision(recall: [0.5, 0.5, 1.0], precision: [1.0, 0.5, 2.0 / 3], metric: .voc),
            0.5 * 1.0 + 0.5 * (2.0 / 3), accuracy: 1e-12)
        XCTAssertEqual(vocAveragePrecision(recall: [], precision: [], metric: .voc07), 0)
        XCTAssertEqual(vocAveragePrecision(recall: [], precision: [], metric: .voc), 0)
    }

    func testIoUUsesThePlusOneConvention() {
        let a = BoxCorners(xmin: 0, ymin: 0, xmax: 9, ymax: 9)  // 10 x 10 pixels
        let b = BoxCorners(xmin: 5, ymin: 0, xmax: 14, ymax: 9)  // overlaps 5 x 10
        XCTAssertEqual(vocIoU(a, b), 50.0 / 150.0, accuracy: 1e-15)
        XCTAssertEqual(
            BoxCorners(BoxXYWH(x: 1, y: 2, width: 3, height: 4)), BoxCorners(xmin: 1, ymin: 2, xmax: 4, ymax: 6))
    }

    func testReadsAVOCdevkitFolder() throws {
        let gt = try VOCGroundTruth.load(devkit: tiny, split: "test")
        XCTAssertEqual(gt.imageIDs, ["000001", "000002", "000003"])
        XCTAssertEqual(gt.classNames, VOCGroundTruth.standardClasses, "all names are VOC names: the standard list")
        let dog = 11, person = 14, train = 18
        XCTAssertEqual(
            gt.objects,
            [
                VOCGroundTruthObject(
                    imageIndex: 0, classIndex: dog, box: BoxCorners(xmin: 48, ymin: 240, xmax: 195, ymax: 371),
                    difficult: false),
                VOCGroundTruthObject(
                    imageIndex: 0, classIndex: person, box: BoxCorners(xmin: 8, ymin: 12, xmax: 352, ymax: 498),
                    difficult: false),
                VOCGroundTruthObject(
                    imageIndex: 1, classIndex: train, box: BoxCorners(xmin: 139, ymin: 200, xmax: 207, ymax: 301),
                    difficult: false),
                VOCGroundTruthObject(
                    imageIndex: 1, classIndex: dog, box: BoxCorners(xmin: 10, ymin: 10, xmax: 60, ymax: 40),
                    difficult: true),
                VOCGroundTruthObject(
                    imageIndex: 2, classIndex: person, box: BoxCorners(xmin: 1.5, ymin: 2, xmax: 100, ymax: 200),
                    difficult: false)
            ], "the head part's box is not an object; difficult defaults to 0")
    }

    func testEvaluatesTheTinyFolderAsWorkedOutByHand() throws {
        let gt = try VOCGroundTruth.load(devkit: tiny, split: "test")
        let dets = try DetectionsFile.load(tiny.appendingPathComponent("dets.json"), index: gt.index)
        let voc07 = evaluateVOC(gt, dets.detections, metric: .voc07)
        let ap = Dictionary(uniqueKeysWithValues: voc07.classes.map { ($0.name, $0.ap) })
        // dog: difficult match ignored, exact hit, duplicate FP -> 1; person: FP then hit, recall 0.5 -> 6/11 * 0.5
        XCTAssertEqual(ap["dog"]!, 1, accuracy: 1e-12)
        XCTAssertEqual(ap["person"]!, 3.0 / 11, accuracy: 1e-12)
        XCTAssertEqual(ap["train"]!, 1, accuracy: 1e-12)
        XCTAssertEqual(ap["cat"], -1, "no ground truth: undefined")
        XCTAssertEqual(voc07.mAP, (2 + 3.0 / 11) / 3, accuracy: 1e-12)
        let dogResult = voc07.classes.first { $0.name == "dog" }!
        XCTAssertEqual(dogResult.positives, 1)
        XCTAssertEqual(dogResult.precision, [0, 1, 0.5])
        let area = evaluateVOC(gt, dets.detections, metric: .voc)
        XCTAssertEqual(area.mAP, 2.25 / 3, accuracy: 1e-12)
    }

    func testClassListFromNamesFoundOrFromAFile() throws {
        let found = try VOCGroundTruth.load(devkit: tiny, split: "custom")
        XCTAssertEqual(found.classNames, ["robot", "spaceship"], "not VOC names: sorted names found")
        let listed = try VOCGroundTruth.load(
            devkit: tiny, split: "custom",
            classNames: VOCGroundTruth.loadClassList(tiny.appendingPathComponent("classes.txt")))
        XCTAssertEqual(listed.classNames, ["spaceship", "robot"])
        XCTAssertEqual(listed.objects.map(\.classIndex), [0, 1])
        let subset = try VOCGroundTruth.load(devkit: tiny, split: "custom", classNames: ["robot"])
        XCTAssertEqual(subset.objects.count, 1)
        XCTAssertEqual(subset.warnings.count, 1)
        XCTAssert(subset.warnings[0].contains("spaceship"))
    }

    func testMissingAndBrokenAnnotationsNameTheFile() throws {
        // (split, the file named, the problem, whether the position in the file is known)
        for (split, file, problem, positioned) in [
            ("missing", "Annotations/000009.xml", "not found", false),
            ("broken", "000004.xml", "malformed XML", true),
            ("nobox", "000005.xml", "bndbox", false)
        ] {
            XCTAssertThrowsError(try VOCGroundTruth.load(devkit: tiny, split: split)) { error in
                let e = error as! InputError
                XCTAssert(e.file.hasSuffix(file), e.description)
                XCTAssert(e.message.contains(problem), e.description)
                if positioned { XCTAssertNotNil(e.line, e.description) }
            }
        }
        XCTAssertThrowsError(try VOCGroundTruth.load(devkit: tiny, split: "val")) { error in
            let e = error as! InputError
            XCTAssert(e.description.contains("val.txt"), e.description)
            XCTAssert(e.message.contains("test"), "lists the splits there: \(e.description)")
        }
        XCTAssertThrowsError(try VOCGroundTruth.load(devkit: tiny.appendingPathComponent("nowhere"), split: "test"))
    }
}
