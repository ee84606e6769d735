import XCTest
import TestSupport
import Foundation
import DetectionReport
import Engine
import NN
import Imaging
import Detector
import Support
import Evaluation

/// `finetune` and `detect` as a user runs them.
final class DetectorCommandLineTests: XCTestCase {

    func run(_ name: String, _ args: [String]) throws -> (Int32, String, String) { try CommandRunner.run(name, args) }

    func testFinetuneThenDetect() throws {
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        let voc = d.appendingPathComponent("voc")
        try writeTinyVOC(voc)
        // The recipe as YAML, from the test's config.
        let yaml = d.appendingPathComponent("tiny.yaml")
        try Recipe.json(tinyFinetuneConfig(voc)).write(to: yaml, atomically: true, encoding: .utf8)  // JSON is YAML
        let run1 = try run(
            "finetune",
            [
                "--config", yaml.path, "--out", d.appendingPathComponent("run").path, "--iterations", "8",
                "--set", "data.val_split="
            ])
        XCTAssertEqual(run1.0, 0, run1.2)
        let weights = d.appendingPathComponent("run/model_final.safetensors")
        XCTAssertTrue(FileManager.default.fileExists(atPath: weights.path), run1.1)

        // detect: a JPEG and a PNG, a folder with a non-image, JSON out; the input is never overwritten.
        let imgs = d.appendingPathComponent("imgs")
        try FileManager.default.createDirectory(at: imgs, withIntermediateDirectories: true)
        let png = voc.appendingPathComponent("JPEGImages/000000.png")
        let image = try ImageIO.read(png)
        try ImageIO.writeJPEG(image, to: imgs.appendingPathComponent("a.jpg"))
        try FileManager.default.copyItem(at: png, to: imgs.appendingPathComponent("b.png"))
        try "hello".write(to: imgs.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: imgs.appendingPathComponent("b.png"))
        let out = d.appendingPathComponent("drawn")
        let r = try run(
            "detect",
            [
                imgs.path, "--weights", weights.path, "--out", out.path, "--json",
                d.appendingPathComponent("r.json").path,
                "--score-thresh", "0.0", "--draw-thresh", "0.0"
            ])
        XCTAssertEqual(r.0, 0, r.2)
        XCTAssertTrue(r.1.contains("skipping") && r.1.contains("notes.txt"), r.1)
        XCTAssertTrue(r.1.contains("detection"), r.1)
        let drawn = try ImageIO.read(out.appendingPathComponent("b_boxes.png"))
        XCTAssertEqual(drawn.width, image.width)
        XCTAssertTrue(drawn != image, "boxes were drawn")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("a_boxes.png").path))
        XCTAssertEqual(try Data(contentsOf: imgs.appendingPathComponent("b.png")), before)
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("r.json")))
            as! [[String: Any]]
        for e in json {
            XCTAssertNotNil(e["image_id"] as? String); XCTAssertNotNil(e["category_id"] as? Int)
            XCTAssertEqual((e["bbox"] as! [Double]).count, 4); XCTAssertNotNil(e["score"] as? Double)
        }
        // The table and JSON agree with the library on the same image.
        let lib = try DetectorRunner(checkpoint: weights)
        let libR = lib; libR.config.test.scoreThreshold = 0
        XCTAssertEqual(json.filter { $0["image_id"] as? String == "b" }.count, try libR.detect(image).count)

        // evaluate --weights runs the detector over the split and gives the same numbers as detect --json +
        // evaluate --dets.
        let e1 = try run(
            "evaluate",
            [
                "--gt", voc.path, "--split", "test", "--weights", weights.path, "--metric", "voc",
                "--json", d.appendingPathComponent("e1.json").path, "--save-dets",
                d.appendingPathComponent("e1dets.json").path
            ])
        XCTAssertEqual(e1.0, 0, e1.2)
        let testImages = (0..<4).map { voc.appendingPathComponent(String(format: "JPEGImages/%06d.png", $0)).path }
        let dj = try run(
            "detect", testImages + ["--weights", weights.path, "--json", d.appendingPathComponent("dj.json").path])
        XCTAssertEqual(dj.0, 0, dj.2)
        let e2 = try run(
            "evaluate",
            [
                "--gt", voc.path, "--split", "test", "--dets", d.appendingPathComponent("dj.json").path, "--metric",
                "voc",
                "--json", d.appendingPathComponent("e2.json").path
            ])
        XCTAssertEqual(e2.0, 0, e2.2)
        let m1 =
            try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("e1.json")))
            as! [String: Any]
        let m2 =
            try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("e2.json")))
            as! [String: Any]
        XCTAssertEqual(m1["mAP"] as! Double, m2["mAP"] as! Double, accuracy: 1e-12)

        // Bad input: an unreadable image among good ones gives partial results and a non-zero exit;
        // an image smaller than the anchor stride; a checkpoint whose class count disagrees.
        try Data("garbage".utf8).write(to: imgs.appendingPathComponent("c.jpg"))
        let tiny = imgs.appendingPathComponent("tiny.png")
        try ImageIO.writePNG(RGBImage(width: 4, height: 3), to: tiny)
        let r2 = try run("detect", [imgs.path, "--weights", weights.path, "--min-size", "0", "--max-size", "0"])
        XCTAssertNotEqual(r2.0, 0)
        XCTAssertTrue(r2.2.contains("c.jpg") && r2.2.contains("tiny.png") && r2.2.contains("anchor stride"), r2.2)
        XCTAssertTrue(r2.1.contains("b.png: "), r2.1)
        let bad = d.appendingPathComponent("bad.safetensors")
        let file = try SafeTensorsFile(contentsOf: weights)
        var meta = file.metadata
        meta["detector_config"] = meta["detector_config"]!.replacingOccurrences(
            of: "\"class_names\":[\"box\",\"disc\"]", with: "\"class_names\":[\"box\",\"disc\",\"cat\"]")
        var w = SafeTensorsWriter(metadata: meta)
        for n in file.names {
            if file.entries[n]!.dtype == .i64 {
                w.add(n, int64: try file.integers(n)[0])
            } else {
                w.add(n, try file.tensor(n))
            }
        }
        try w.write(to: bad)
        let r3 = try run("detect", [png.path, "--weights", bad.path])
        XCTAssertNotEqual(r3.0, 0)
        XCTAssertTrue(r3.2.contains("roi_heads.cls_score.weight") && r3.2.contains("3 classes"), r3.2)
        let r4 = try run("detect", [png.path, "--weights", d.appendingPathComponent("none.safetensors").path])
        XCTAssertNotEqual(r4.0, 0)
        XCTAssertTrue(r4.2.contains("none.safetensors"), r4.2)
    }

    /// `detect --expect`: the bundled detector passes the check on its bundled samples (the demo's claim);
    /// an annotation with an object that is not there fails it with exit status 1 and names the object.
    func testDetectExpect() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let samples = root.appendingPathComponent("weights/samples")
        let jpgs = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter {
            $0.hasPrefix("detect_") && $0.hasSuffix(".jpg")
        }.sorted()
        let ok = try run("detect", jpgs.map { samples.appendingPathComponent($0).path } + ["--expect", samples.path])
        XCTAssertEqual(ok.0, 0, ok.1 + ok.2)
        XCTAssertEqual(ok.1.components(separatedBy: "check: all").count - 1, jpgs.count, ok.1)
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("expect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        let xml = samples.appendingPathComponent(jpgs[0]).deletingPathExtension().appendingPathExtension("xml")
        let extra = try String(contentsOf: xml, encoding: .utf8).replacingOccurrences(
            of: "</annotation>",
            with:
                "<object><name>heart</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
                + "<ymax>9</ymax></bndbox></object></annotation>"
        )
        let bad = d.appendingPathComponent("a.xml")
        try extra.write(to: bad, atomically: true, encoding: .utf8)
        let r = try run("detect", [samples.appendingPathComponent(jpgs[0]).path, "--expect", bad.path])
        XCTAssertEqual(r.0, 1)
        XCTAssertTrue(r.1.contains("check FAILED") && r.1.contains("missed heart at [1, 1, 9, 9]"), r.1)
        XCTAssertTrue(r.2.contains("failed the --expect check"), r.2)
    }
}

/// What `detect` draws, lists and writes: the drawing threshold against the detection threshold, ids for
/// COCO and VOC tools, and problems found before the detector runs.
final class DetectOutputCommandLineTests: XCTestCase {
    let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("weights/samples")

    /// The default picture shows exactly the objects `--expect` accepts; the JSON of the same run still holds
    /// the low-scoring detections for evaluation.
    func testDefaultPictureDrawsWhatExpectAcceptsAndJSONKeepsTheRest() throws {
        let d = try makeScratchFolder("detect-out")
        let jpg = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter {
            $0.hasPrefix("detect_") && $0.hasSuffix(".jpg")
        }.sorted()[0]
        let image = samples.appendingPathComponent(jpg)
        let xml = image.deletingPathExtension().appendingPathExtension("xml")
        let png = d.appendingPathComponent("boxes.png"), json = d.appendingPathComponent("d.json")
        let r = try CommandRunner.run(
            "detect", [image.path, "--out", png.path, "--json", json.path, "--expect", xml.path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let annotated = try VOCGroundTruth.parseAnnotation(Data(contentsOf: xml), file: xml.path).filter {
            !$0.difficult
        }
        XCTAssert(r.stdout.contains("\(annotated.count) detections scoring >= 0.50"), r.stdout)
        XCTAssert(r.stdout.contains("check: all \(annotated.count) annotated objects found"), r.stdout)

        let all = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [[String: Any]]
        let scores = all.map { $0["score"] as! Double }
        XCTAssertEqual(scores.filter { $0 >= 0.5 }.count, annotated.count, "drawn = annotated objects")
        XCTAssertGreaterThan(scores.filter { $0 < 0.5 }.count, 0, "low-scoring detections stay in the JSON")
        XCTAssert(scores.allSatisfy { $0 >= 0.05 })
        XCTAssert(
            r.stdout.contains("(\(scores.filter { $0 < 0.5 }.count) more below 0.50, not drawn; all are in --json)"),
            r.stdout)
        XCTAssertEqual(
            Set(all.compactMap { $0["image_id"] as? String }), [image.deletingPathExtension().lastPathComponent])

        // The picture is the library's drawing of the detections scoring >= 0.5, nothing else.
        let runner = try DetectorRunner(
            checkpoint: samples.deletingLastPathComponent().appendingPathComponent("detector.safetensors"))
        let source = try ImageIO.read(image)
        let shown = try runner.detect(source).filter { $0.score >= 0.5 }
        XCTAssertEqual(shown.count, annotated.count)
        XCTAssertEqual(try ImageIO.read(png), DetectionOutput.draw(shown, on: source))
        XCTAssertNotEqual(try ImageIO.read(png), DetectionOutput.draw(try runner.detect(source), on: source))

        // --draw-thresh 0 draws everything; the table then lists every detection.
        let r0 = try CommandRunner.run("detect", [image.path, "--draw-thresh", "0"])
        XCTAssert(r0.stdout.contains("\(all.count) detections\n"), r0.stdout)
    }

    /// Integer ids for stems of digits, COCO ids through --gt; every problem reported before any image runs.
    func testImageIDsAndProblemsFoundBeforeTheDetectorRuns() throws {
        let d = try makeScratchFolder("detect-out")
        let jpg = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter {
            $0.hasPrefix("detect_") && $0.hasSuffix(".jpg")
        }.sorted()[0]
        let source = samples.appendingPathComponent(jpg)
        let imgs = d.appendingPathComponent("imgs")
        try FileManager.default.createDirectory(at: imgs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source, to: imgs.appendingPathComponent("000000000130.jpg"))
        let gt = d.appendingPathComponent("gt.json")
        try Data(
            """
            {"images": [{"id": 130, "file_name": "000000000130.jpg"}, {"id": 9, "file_name": "photo.jpg"}],
             "categories": [{"id": 1, "name": "circle"}], "annotations": []}
            """.utf8
        ).write(to: gt)
        let plain = d.appendingPathComponent("plain.json"), withGT = d.appendingPathComponent("gt_ids.json")
        var r = try CommandRunner.run("detect", [imgs.path, "--json", plain.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CommandRunner.run("detect", [imgs.path, "--json", withGT.path, "--gt", gt.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = (try JSONSerialization.jsonObject(with: Data(contentsOf: plain)) as! [[String: Any]]).map {
            $0["image_id"] as? Int
        }
        XCTAssertFalse(ids.isEmpty)
        XCTAssert(ids.allSatisfy { $0 == 130 }, "\(ids)")
        XCTAssertEqual(try Data(contentsOf: plain), try Data(contentsOf: withGT))

        // An image the ground truth lacks, two files with one stem, an unwritable output: each one message,
        // before any detection (no table printed, nothing written).
        try FileManager.default.copyItem(at: source, to: imgs.appendingPathComponent("other.jpg"))
        let out = d.appendingPathComponent("never.json")
        r = try CommandRunner.run("detect", [imgs.path, "--json", out.path, "--gt", gt.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(
            r.stderr.contains("gt.json: 1 of the 2 images are not in the ground truth")
                && r.stderr.contains("other.jpg"), r.stderr)
        XCTAssertFalse(r.stdout.contains("detection"), r.stdout)
        try FileManager.default.removeItem(at: imgs.appendingPathComponent("other.jpg"))
        try ImageIO.writePNG(try ImageIO.read(source), to: imgs.appendingPathComponent("000000000130.png"))
        r = try CommandRunner.run("detect", [imgs.path, "--json", out.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("same image_id 130"), r.stderr)
        try FileManager.default.removeItem(at: imgs.appendingPathComponent("000000000130.png"))
        let file = d.appendingPathComponent("file")
        try Data("x".utf8).write(to: file)
        r = try CommandRunner.run("detect", [imgs.path, "--voc-results", file.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("VOC results folder: exists and is not a folder"), r.stderr)
        r = try CommandRunner.run("detect", [imgs.path, "--json", file.appendingPathComponent("x.json").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("folder of the --json file"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        // VOC devkit files: one per class, stems as ids, the detections of the JSON.
        let results = d.appendingPathComponent("voc")
        r = try CommandRunner.run("detect", [imgs.path, "--voc-results", results.path, "--voc-split", "val"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let classes = try DetectorRunner(
            checkpoint: samples.deletingLastPathComponent().appendingPathComponent("detector.safetensors")
        )
        .model.config.classNames
        var lines: [[Substring]] = []
        for c in classes {
            let text = try String(contentsOf: results.appendingPathComponent("comp4_det_val_\(c).txt"), encoding: .utf8)
            lines += text.split(separator: "\n").map { $0.split(separator: " ") }
        }
        XCTAssertEqual(lines.count, ids.count)
        XCTAssert(lines.allSatisfy { $0.count == 6 && $0[0] == "000000000130" && Double($0[1])! >= 0.05 })
    }
}
