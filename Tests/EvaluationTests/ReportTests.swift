import Evaluation
import Foundation
import Detection
import FileSupport
import XCTest
import TestSupport

/// Tables, JSON, CSV, batch comparison, plots, progress bar, atomic writes; and small COCO cases by hand.
final class ReportTests: XCTestCase {
    let coco = fixtures.appendingPathComponent("coco")
    let tiny = fixtures.appendingPathComponent("voc_tiny")

    func cocoResult(_ name: String = "case_03") throws -> (COCOGroundTruth, EvaluationResult) {
        let gt = try COCOGroundTruth.load(coco.appendingPathComponent("\(name).gt.json"))
        let dets = try DetectionsFile.load(coco.appendingPathComponent("\(name).dets.json"), index: gt.index)
        return (gt, try evaluate(.coco(gt), dets.detections, metric: .coco))
    }

    func vocResult(thresholds: [Double] = [0.5]) throws -> EvaluationResult {
        let gt = try GroundTruth.load(path: tiny.path, split: "test")
        let dets = try DetectionsFile.load(tiny.appendingPathComponent("dets.json"), index: gt.index)
        return try evaluate(gt, dets.detections, metric: .voc07, vocIoUThresholds: thresholds)
    }

    func testCOCOJSONUsesTheFieldsNamesInOrder() throws {
        let (gt, result) = try cocoResult()
        let text = renderJSON(result)
        let keys = [
            "metric", "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
            "per_class"
        ]
        let positions = keys.map { text.range(of: "\"\($0)\":")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), "keys in the documented order")
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        XCTAssertEqual(json["metric"] as? String, "coco")
        guard case .coco(let e) = result else { return XCTFail() }
        for (name, value) in zip(COCOSummary.names, e.summary.values) {
            XCTAssertClose(json[name] as! Double, value, tolerance: 1e-12)
        }
        let perClass = json["per_class"] as! [String: Double]
        XCTAssertEqual(Set(perClass.keys), Set(gt.categories.map(\.name)))
        XCTAssertEqual(perClass["class71"], -1, "a category without ground truth is -1")
    }

    func testVOCJSONAndExtraThresholds() throws {
        let json =
            try JSONSerialization.jsonObject(with: Data(renderJSON(vocResult(thresholds: [0.5, 0.75])).utf8))
            as! [String: Any]
        XCTAssertEqual(json["metric"] as? String, "voc07")
        XCTAssertClose(json["mAP"] as! Double, (2 + 3.0 / 11) / 3)
        XCTAssertClose((json["per_class"] as! [String: Double])["dog"]!, 1, tolerance: 1e-12)
        XCTAssertEqual(json["iou"] as? Double, 0.5)
        let extra = json["at_iou"] as! [String: [String: Any]]
        XCTAssertNotNil(extra["0.75"]?["mAP"])
    }

    func testCSVAndTable() throws {
        let (_, result) = try cocoResult()
        let csv = renderCSV(result).split(separator: "\n")
        XCTAssertEqual(csv[0], "category_id,category,AP,AP50,AP75,APs,APm,APl,AR1,AR10,AR100,ARs,ARm,ARl")
        XCTAssert(csv[1].hasPrefix(",all,"))
        XCTAssertEqual(csv.count, 2 + 5)
        let table = renderTable(result)
        XCTAssert(
            table.contains(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.261"), table)
        XCTAssert(table.contains("class71"))
        let voc = renderTable(try vocResult())
        XCTAssert(voc.contains("11-point"))
        XCTAssert(voc.contains("mAP          0.7576"), voc)
        XCTAssert(renderCSV(try vocResult()).split(separator: "\n")[1].hasPrefix("mAP,0.75757575757575"))
    }

    func testBatchTablesAreSortedByHeadlineWithFailuresLast() throws {
        let (gt, _) = try cocoResult()
        let folder = try makeScratchFolder("evaluation")
        let source = try Data(contentsOf: coco.appendingPathComponent("case_03.dets.json"))
        try source.write(to: folder.appendingPathComponent("a_full.json"))
        try write("[]", to: folder.appendingPathComponent("b_empty.json"))
        try write("[{\"image_id\": 1}", to: folder.appendingPathComponent("c_broken.json"))
        // Half of the detections (every other line of the list).
        let all = try JSONSerialization.jsonObject(with: source) as! [Any]
        let half = try JSONSerialization.data(
            withJSONObject: all.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
        try half.write(to: folder.appendingPathComponent("d_half.json"))
        try write("# a list file\nd_half.json\n\nb_empty.json\n", to: folder.appendingPathComponent("list.txt"))

        let files = try resultFiles(in: folder.path)
        XCTAssertEqual(files.map(\.lastPathComponent), ["a_full.json", "b_empty.json", "c_broken.json", "d_half.json"])
        XCTAssertEqual(
            try resultFiles(in: folder.appendingPathComponent("list.txt").path).map(\.lastPathComponent),
            ["d_half.json", "b_empty.json"])

        var calls: [Int] = []
        let rows = evaluateBatch(.coco(gt), files: files, metric: .coco) { done, total in
            XCTAssertEqual(total, 4)
            calls.append(done)
        }
        XCTAssertEqual(calls, [1, 2, 3, 4])
        XCTAssertNotNil(rows[2].error)
        XCTAssert(rows[2].error!.contains("c_broken.json"))
        let ranked = rankedByHeadline(rows).map { ($0.file as NSString).lastPathComponent }
        XCTAssertEqual(ranked.first, "a_full.json")
        XCTAssertEqual(ranked.last, "c_broken.json")
        XCTAssertEqual(ranked[2], "b_empty.json", "AP 0 ranks below the half file")

        let markdown = renderBatchMarkdown(rows, groundTruth: "test GT")
        XCTAssert(markdown.contains("| 1 | a_full.json | 87 | 0.2608 |"), markdown)
        XCTAssert(markdown.contains("Failed (1):"), markdown)
        let csv = renderBatchCSV(rows).split(separator: "\n")
        XCTAssertEqual(csv[0], "rank,file,detections,AP,AP50,AP75,APs,APm,APl,AR1,AR10,AR100,ARs,ARm,ARl,error")
        XCTAssertEqual(csv.count, 5)
        XCTAssert(csv[4].hasPrefix(",") && csv[4].contains("c_broken.json"))
    }

    func testAtomicWritesLeaveNoTemporaryFiles() throws {
        let folder = try makeScratchFolder("evaluation")
        let target = folder.appendingPathComponent("sub/result.json")
        try AtomicFile.write("one", to: target, createFolder: true)
        try AtomicFile.write("two", to: target, createFolder: true)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "two")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("sub").path),
            ["result.json"])
        XCTAssertThrowsError(
            try AtomicFile.write("x", to: URL(fileURLWithPath: "/proc/nope/result.json"), createFolder: true))
    }

    func testPRPlots() throws {
        let (_, result) = try cocoResult()
        let plots = prPlots(result)
        XCTAssertEqual(
            plots.map(\.fileName),
            ["pr_class43.png", "pr_class98.png", "pr_class129.png", "pr_class177.png", "summary.png"],
            "one per category with ground truth, then the summary")
        XCTAssertEqual(plots[0].chart.series.count, 3)
        XCTAssertEqual(plots[0].chart.series[0].xs.count, 101)
        let folder = try makeScratchFolder("evaluation")
        let files = try writePRPlots(
            try vocResult(thresholds: [0.5, 0.7]), to: folder.appendingPathComponent("plots"), width: 320, height: 240)
        XCTAssertEqual(files.map(\.lastPathComponent), ["pr_dog.png", "pr_person.png", "pr_train.png", "summary.png"])
        for file in files {
            XCTAssertEqual(Array(try Data(contentsOf: file).prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG")
        }
    }

    // MARK: Small COCO cases worked out by hand

    func testCrowdRegionsAbsorbDetectionsAndAreIgnored() {
        let crowd = BoxXYWH(x: 0, y: 0, width: 100, height: 100)
        let inside = BoxXYWH(x: 10, y: 10, width: 20, height: 20)
        XCTAssertEqual(
            cocoIoU(detection: inside, groundTruth: crowd, crowd: true), 1, "intersection over the detection's area")
        XCTAssertEqual(cocoIoU(detection: inside, groundTruth: crowd, crowd: false), 400.0 / 10000)
        XCTAssertEqual(
            cocoIoU(detection: BoxXYWH(x: 200, y: 0, width: 5, height: 5), groundTruth: crowd, crowd: false), 0)

        // One real object and a crowd region; three detections in the crowd and one on the object.
        let gt = COCOGroundTruth(
            images: [.number(1)], categories: [Category(id: 1, name: "person")],
            objects: [
                GroundTruthObject(
                    id: 1, imageIndex: 0, categoryIndex: 0, box: BoxXYWH(x: 200, y: 200, width: 50, height: 50)),
                GroundTruthObject(id: 2, imageIndex: 0, categoryIndex: 0, box: crowd, isCrowd: true)
            ])
        let dets = [
            Detection(imageIndex: 0, categoryIndex: 0, box: inside, score: 0.9),
            Detection(imageIndex: 0, categoryIndex: 0, box: BoxXYWH(x: 50, y: 50, width: 20, height: 20), score: 0.8),
            Detection(imageIndex: 0, categoryIndex: 0, box: BoxXYWH(x: 200, y: 200, width: 50, height: 50), score: 0.7),
            Detection(imageIndex: 0, categoryIndex: 0, box: BoxXYWH(x: 5, y: 5, width: 10, height: 10), score: 0.6)
        ]
        let s = evaluateCOCO(gt, dets).summary
        XCTAssertEqual(s.ap, 1, accuracy: 1e-12, "crowd detections are ignored, the one real hit is precision 1")
        XCTAssertEqual(s.ar1, 0, "maxDets 1 keeps only the 0.9 detection, which is on the crowd")
        XCTAssertEqual(s.ar10, 1, accuracy: 1e-12)
    }

    func testVOCGroundTruthWithCOCOSemanticsIgnoresDifficultObjects() throws {
        let gt = try GroundTruth.load(path: tiny.path, split: "test")
        let dets = try DetectionsFile.load(tiny.appendingPathComponent("dets.json"), index: gt.index)
        guard case .coco(let e) = try evaluate(gt, dets.detections, metric: .coco) else { return XCTFail() }
        let dog = e.categories.firstIndex { $0.name == "dog" }!
        // The 0.95 detection sits exactly on the difficult dog: ignored, so the exact hit comes first.
        XCTAssertEqual(e.summary(category: dog).ap50, 1, accuracy: 1e-12)
        XCTAssertEqual(e.averagePrecision(category: e.categories.firstIndex { $0.name == "cat" }!), -1)
        XCTAssertEqual(gt.defaultMetric, .voc, "a folder not named VOC2007 gets the area metric")
    }
}
