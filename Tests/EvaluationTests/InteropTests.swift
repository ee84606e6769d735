import Evaluation
import Foundation
import Detection
import TestSupport
import XCTest

/// Results the field's own tools accept (scripts/fixtures/interop_fixtures.py): `detect --json` output that
/// pycocotools' loadRes reads, scored the same here; VOC devkit result files that voc_eval reads, giving the
/// same AP as `evaluate`.
final class InteropTests: XCTestCase {
    let folder = fixtures.appendingPathComponent("interop")
    var expected: [String: Any] {
        (try? loadJSONObject(folder.appendingPathComponent("expected.json"))) as? [String: Any] ?? [:]
    }

    /// `detect --json` (integer ids from the file stems) scored by pycocotools and by `evaluate`.
    func testDetectResultsGivePycocotoolsTwelveNumbers() throws {
        let gt = try COCOGroundTruth.load(folder.appendingPathComponent("instances_test.json"))
        let dets = try DetectionsFile.load(folder.appendingPathComponent("dets.json"), index: gt.index)
        XCTAssertEqual(dets.detections.count, expected["detections"] as? Int)
        XCTAssertEqual(dets.aliased, 0, "integer ids are the ground truth's own ids")
        let stats = expected["coco_stats"] as! [Double]
        let result = evaluateCOCO(gt, dets.detections)
        XCTAssertEqual(result.summary.values.count, 12)
        for (i, (ours, theirs)) in zip(result.summary.values, stats).enumerated() {
            XCTAssertClose(ours, theirs, tolerance: 1e-12, COCOSummary.names[i])
        }
        XCTAssertGreaterThan(stats[0], 0.5, "a detector that works: the check is not vacuous")
    }

    /// The ids `detect` gives the fixture's images, with and without the ground truth, are the ids that
    /// pycocotools accepted.
    func testImageIDsOfTheFixtureImages() throws {
        let gt = try COCOGroundTruth.load(folder.appendingPathComponent("instances_test.json"))
        let names = (expected["images"] as! [String])
        let files = names.map { URL(fileURLWithPath: "/data/VOC/JPEGImages/\($0).jpg") }
        let plain = try ResultImageIDs.ids(for: files)
        let looked = try ResultImageIDs.ids(for: files, groundTruth: gt, groundTruthFile: "instances_test.json")
        XCTAssertEqual(plain, looked)
        XCTAssertEqual(plain, names.map { .number(Int($0)!) })
        let used = Set(
            (try loadJSONObject(folder.appendingPathComponent("dets.json")) as! [[String: Any]]).map {
                $0["image_id"] as! Int
            })
        XCTAssert(
            used.isSubset(
                of: Set(
                    plain.map { id -> Int in
                        if case .number(let n) = id { return n }; return -1
                    })))
    }

    /// The comp4 files `evaluate --save-voc-results` wrote are what the writer writes now, and voc_eval's AP
    /// on them equals this evaluator's AP on the JSON they came from.
    func testVOCResultFilesGiveTheSameAPAsEvaluate() throws {
        let devkit = folder.appendingPathComponent("VOC")
        let classes = try VOCGroundTruth.loadClassList(devkit.appendingPathComponent("classes.txt"))
        let gt = try VOCGroundTruth.load(devkit: devkit, split: "test", classNames: classes)
        let dets = try DetectionsFile.load(folder.appendingPathComponent("dets.json"), index: gt.index)
        XCTAssertEqual(dets.aliased, dets.detections.count, "numeric ids matched to stems of digits")
        let voc = expected["voc"] as! [String: [String: Any]]
        for metric in [VOCMetric.voc07, .voc] {
            let result = evaluateVOC(gt, dets.detections, metric: metric)
            let theirs = voc[metric.rawValue]!
            XCTAssertClose(result.mAP, theirs["mAP"] as! Double, tolerance: 1e-12, metric.rawValue)
            let perClass = theirs["per_class"] as! [String: Double]
            for c in result.classes { XCTAssertClose(c.ap, perClass[c.name]!, tolerance: 1e-12, "\(metric) \(c.name)") }
        }

        let out = try makeScratchFolder("evaluation").appendingPathComponent("results")
        let index = gt.index
        let entries = dets.detections.map { d in
            VOCResultFiles.Entry(
                image: index.images[Int(d.imageIndex)].plainText, classIndex: Int(d.categoryIndex),
                score: d.score, box: BoxCorners(d.box))
        }
        let written = try VOCResultFiles.write(entries, classNames: classes, split: "test", to: out)
        XCTAssertEqual(written.map(\.lastPathComponent), classes.map { "comp4_det_test_\($0).txt" })
        for file in written {
            let committed = folder.appendingPathComponent("voc_results").appendingPathComponent(file.lastPathComponent)
            XCTAssertEqual(try Data(contentsOf: file), try Data(contentsOf: committed), file.lastPathComponent)
        }
        // Lines: id, score, corners, each number reading back to the very double evaluated.
        let line = try String(contentsOf: written[0], encoding: .utf8).split(separator: "\n")[0].split(separator: " ")
        XCTAssertEqual(line.count, 6)
        XCTAssertEqual(line[0].count, 6, "the VOC stem, zero-padded as in the split file")
        let first = entries.first { $0.classIndex == 0 }!
        XCTAssertEqual(Double(line[1]), first.score)
        XCTAssertEqual(Double(line[5]), first.box.ymax)
    }

    func testImageIDRules() throws {
        func url(_ name: String) -> URL { URL(fileURLWithPath: "/x/\(name)") }
        XCTAssertEqual(
            try ResultImageIDs.ids(for: [url("000000000130.jpg"), url("cat.png"), url("12a.jpg"), url("7.jpg")]),
            [.number(130), .name("cat"), .name("12a"), .number(7)])
        XCTAssertEqual(
            ResultImageIDs.id(forStem: String(repeating: "9", count: 19)), .name(String(repeating: "9", count: 19)),
            "too long for a number: stays a name")
        XCTAssertThrowsError(try ResultImageIDs.ids(for: [url("a.jpg"), url("a.png")])) { e in
            XCTAssert("\(e)".contains("a.png") && "\(e)".contains("a.jpg") && "\(e)".contains("same image_id"), "\(e)")
        }
        XCTAssertThrowsError(try ResultImageIDs.ids(for: [url("7.jpg"), url("007.jpg")])) { e in
            XCTAssert("\(e)".contains("same image_id 7"), "\(e)")
        }
        let gt = try COCOGroundTruth.parse(
            Data(
                """
                {"images": [{"id": 42, "file_name": "val/abc.jpg"}, {"id": 43, "file_name": "dup.jpg"},
                            {"id": 44, "file_name": "other/dup.jpg"}, {"id": 45}],
                 "categories": [{"id": 1, "name": "a"}], "annotations": []}
                """.utf8), file: "gt.json")
        XCTAssertEqual(
            try ResultImageIDs.ids(for: [url("abc.jpg")], groundTruth: gt, groundTruthFile: "gt.json"), [.number(42)])
        XCTAssertThrowsError(
            try ResultImageIDs.ids(for: [url("abc.jpg"), url("zzz.jpg")], groundTruth: gt, groundTruthFile: "gt.json")
        ) { e in
            XCTAssert(
                "\(e)".hasPrefix("gt.json: 1 of the 2 images are not in the ground truth")
                    && "\(e)".contains("/x/zzz.jpg"), "\(e)")
        }
        XCTAssertThrowsError(try ResultImageIDs.ids(for: [url("dup.jpg")], groundTruth: gt, groundTruthFile: "gt.json"))
        { e in
            XCTAssert("\(e)".contains("2 images have the file name dup.jpg (ids 43, 44)"), "\(e)")
        }
    }

    /// `evaluate` takes file stems against COCO ground truth and numbers against VOC stems of digits, when the
    /// name fits one image; a name that fits two is an error, never a guess.
    func testDetectionsMayNameImagesByStemWhenUnambiguous() throws {
        let gt = try COCOGroundTruth.parse(
            Data(
                """
                {"images": [{"id": 42, "file_name": "val/abc.jpg"}, {"id": 43, "file_name": "two.jpg"}, \
                {"id": 44, "file_name": "two.png"},
                            {"id": 45, "file_name": "44.jpg"}],
                 "categories": [{"id": 1, "name": "a"}], "annotations": []}
                """.utf8), file: "gt.json")
        func dets(_ id: String) -> String {
            "[{\"image_id\": \(id), \"category_id\": 1, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]"
        }
        var list = try DetectionsFile.parse(Data(dets("\"abc\"").utf8), file: "d.json", index: gt.index)
        XCTAssertEqual(list.detections.map(\.imageIndex), [0])
        XCTAssertEqual(list.aliased, 1)
        list = try DetectionsFile.parse(Data(dets("44").utf8), file: "d.json", index: gt.index)
        XCTAssertEqual(list.detections.map(\.imageIndex), [2], "an id is an id, even when another file is named 44.jpg")
        XCTAssertEqual(list.aliased, 0)
        XCTAssertThrowsError(try DetectionsFile.parse(Data(dets("\"two\"").utf8), file: "d.json", index: gt.index)) {
            e in
            XCTAssert("\(e)".contains("image_id \"two\" names 2 images"), "\(e)")
        }
        XCTAssertThrowsError(try DetectionsFile.parse(Data(dets("\"nope\"").utf8), file: "d.json", index: gt.index))

        let voc = VOCGroundTruth(imageIDs: ["002229", "7", "07", "cat"], classNames: ["a"], objects: [])
        list = try DetectionsFile.parse(Data(dets("2229").utf8), file: "d.json", index: voc.index)
        XCTAssertEqual(list.detections.map(\.imageIndex), [0])
        XCTAssertThrowsError(try DetectionsFile.parse(Data(dets("7").utf8), file: "d.json", index: voc.index)) { e in
            XCTAssert("\(e)".contains("image_id 7 names 2 images"), "\(e)")
        }
        list = try DetectionsFile.parse(Data(dets("\"07\"").utf8), file: "d.json", index: voc.index)
        XCTAssertEqual(list.detections.map(\.imageIndex), [2])
    }

    func testVOCResultsFolderProblemsAreFoundBeforeWriting() throws {
        let dir = try makeScratchFolder("evaluation")
        let file = dir.appendingPathComponent("plain")
        try write("x", to: file)
        XCTAssertThrowsError(try VOCResultFiles.prepare(folder: file, split: "test", classNames: ["a"])) { e in
            XCTAssert("\(e)".contains("exists and is not a folder"), "\(e)")
        }
        XCTAssertThrowsError(
            try VOCResultFiles.prepare(folder: file.appendingPathComponent("sub"), split: "test", classNames: ["a"])
        ) { e in
            XCTAssert("\(e)".contains("cannot create it"), "\(e)")
        }
        XCTAssertThrowsError(try VOCResultFiles.prepare(folder: dir, split: "test", classNames: ["a/b"])) { e in
            XCTAssert("\(e)".contains("cannot be part of a file name"), "\(e)")
        }
        // Empty classes still get their (empty) file, as the devkit expects one file per class.
        let written = try VOCResultFiles.write(
            [], classNames: ["a", "b"], split: "val", to: dir.appendingPathComponent("r"))
        XCTAssertEqual(try written.map { try Data(contentsOf: $0).count }, [0, 0])
    }

    /// The command line: `evaluate --save-voc-results` checks its folder before scoring.
    func testEvaluateRefusesAnUnwritableVOCResultsFolder() throws {
        let dir = try makeScratchFolder("evaluation")
        let file = dir.appendingPathComponent("plain")
        try write("x", to: file)
        let r = try CommandRunner.run(
            "evaluate",
            [
                "--gt", folder.appendingPathComponent("VOC").path, "--split", "test",
                "--dets", folder.appendingPathComponent("dets.json").path,
                "--save-voc-results", file.appendingPathComponent("out").path
            ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("VOC results folder: cannot create it"), r.stderr)
        XCTAssertEqual(r.stdout, "", "nothing scored")
    }
}
