import Foundation
import XCTest
import TestSupport

/// The `evaluate` executable, run as a user would: exit status, stdout, stderr, files written.
final class CommandLineTests: XCTestCase {
    let coco = fixtures.appendingPathComponent("coco")
    let tiny = fixtures.appendingPathComponent("voc_tiny")

    /// The `evaluate` binary built beside this test bundle (`swift build --build-tests` builds it too).
    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try CommandRunner.run("evaluate", arguments)
    }

    func testCOCORunWritesJSONCSVAndPlots() throws {
        let folder = try makeScratchFolder("evaluation")
        let r = try run([
            "--gt", coco.appendingPathComponent("case_05.gt.json").path,
            "--dets", coco.appendingPathComponent("case_05.dets.json").path,
            "--json", folder.appendingPathComponent("ap.json").path,
            "--csv", folder.appendingPathComponent("ap.csv").path,
            "--plots", folder.appendingPathComponent("pr").path
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssert(r.stdout.contains("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"), r.stdout)
        let json = try loadJSONObject(folder.appendingPathComponent("ap.json")) as! [String: Any]
        let expected = try loadJSONObject(coco.appendingPathComponent("expected.json")) as! [String: Any]
        let stats =
            (expected["cases"] as! [[String: Any]]).first { $0["name"] as? String == "case_05" }!["stats"] as! [Double]
        XCTAssertClose(json["AP"] as! Double, stats[0])
        XCTAssertClose(json["ARl"] as! Double, stats[11])
        XCTAssert(FileManager.default.fileExists(atPath: folder.appendingPathComponent("ap.csv").path))
        XCTAssert(FileManager.default.fileExists(atPath: folder.appendingPathComponent("pr/summary.png").path))
    }

    func testVOCRunDefaultsAndOptions() throws {
        let r = try run([
            "--gt", tiny.path, "--split", "test", "--dets", tiny.appendingPathComponent("dets.json").path,
            "--metric", "voc07", "--iou", "0.5", "--iou", "0.7", "--quiet"
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "", "--quiet")
        XCTAssert(r.stdout.contains("AP@0.5  AP@0.7"), r.stdout)
        XCTAssert(r.stdout.contains("0.7576"), r.stdout)
    }

    func testBadInputExitsNonZeroWithTheFileNamed() throws {
        let folder = try makeScratchFolder("evaluation")
        let bad = folder.appendingPathComponent("bad.json")
        try write(
            "[\n{\"image_id\": \"000001\", \"category_id\": 12, \"bbox\": [1, 2, 3, 4], \"score\": 0.5}\n{}]", to: bad)
        var r = try run(["--gt", tiny.path, "--dets", bad.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("bad.json:3:1: expected ',' or ']'"), r.stderr)
        XCTAssertEqual(r.stdout, "")

        r = try run(["--gt", tiny.path, "--split", "missing", "--dets", bad.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("000009.xml"), r.stderr)

        r = try run(["--gt", tiny.path, "--dets", folder.appendingPathComponent("absent.json").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("absent.json: detections file not found"), r.stderr)

        r = try run(["--gt", tiny.path])
        XCTAssertNotEqual(r.status, 0, "neither --dets nor --batch")
        r = try run(["--gt", coco.appendingPathComponent("case_05.gt.json").path, "--dets", bad.path, "--metric", "voc"]
        )
        XCTAssertNotEqual(r.status, 0)
    }

    func testBatchModeWritesTablesAndFailsWhenAFileFails() throws {
        let folder = try makeScratchFolder("evaluation")
        let runs = folder.appendingPathComponent("runs")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: tiny.appendingPathComponent("dets.json"), to: runs.appendingPathComponent("good.json"))
        try write("[]", to: runs.appendingPathComponent("empty.json"))
        var r = try run([
            "--gt", tiny.path, "--batch", runs.path,
            "--markdown", folder.appendingPathComponent("table.md").path,
            "--csv", folder.appendingPathComponent("table.csv").path,
            "--json", folder.appendingPathComponent("all.json").path
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssert(r.stderr.contains("2/2"), "progress on stderr: \(r.stderr)")
        let markdown = try String(contentsOf: folder.appendingPathComponent("table.md"), encoding: .utf8)
        XCTAssertEqual(markdown, r.stdout)
        let good = markdown.range(of: "good.json")!, empty = markdown.range(of: "empty.json")!
        XCTAssert(good.lowerBound < empty.lowerBound, "sorted by mAP")
        let all = try loadJSONObject(folder.appendingPathComponent("all.json")) as! [[String: Any]]
        XCTAssertEqual(all.count, 2)

        try write("not json", to: runs.appendingPathComponent("zz_broken.json"))
        r = try run(["--gt", tiny.path, "--batch", runs.path, "--quiet"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("zz_broken.json:1:1"), r.stderr)
        XCTAssert(r.stdout.contains("Failed (1)"), "the table still lists the others: \(r.stdout)")
    }
}
