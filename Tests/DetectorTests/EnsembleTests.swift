import XCTest
import Detection
import Foundation
import Engine
import Imaging
import Detector
import TestSupport

/// Test-time augmentation and detector ensembles against direct computations.
final class DetectorEnsembleTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func bundled() throws -> DetectorRunner {
        try DetectorRunner(checkpoint: root.appendingPathComponent("weights/detector.safetensors"))
    }

    func sample() throws -> (URL, RGBImage) {
        let dir = root.appendingPathComponent("weights/samples")
        let name = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
            $0.hasPrefix("detect_") && $0.hasSuffix(".jpg")
        }.sorted()[0]
        let url = dir.appendingPathComponent(name)
        return (url, try ImageIO.read(url))
    }

    /// One scale (the model's own), no mirror: exactly the plain detector's output; the same model twice in
    /// an ensemble: the same again (merging is idempotent).
    func testOneScaleNoFlipAndARepeatedModelEqualPlainDetect() throws {
        let runner = try bundled()
        let (_, image) = try sample()
        let plain = try runner.detect(image)
        XCTAssertGreaterThan(plain.count, 5)
        let one = try DetectorEnsemble(
            [runner], names: ["a"],
            augmentation: TestTimeAugmentation(scales: [runner.config.input.minSize], flip: false))
        XCTAssertEqual(try one.detect(image), plain)
        XCTAssertEqual(one.passCount, 1)
        let twice = try DetectorEnsemble([runner, runner], names: ["a", "b"])
        XCTAssertEqual(try twice.detect(image), plain)
    }

    /// The mirrored pass: its boxes, mapped back with x -> W - x (computed here), merged with the plain pass,
    /// give exactly what the ensemble returns; and the mirrored pass really finds the objects mirrored.
    func testMirroredPassIsMappedBackExactly() throws {
        let runner = try bundled()
        let (_, image) = try sample()
        let w = Float(image.width)
        let plain = try runner.detect(image)
        let mirrored = try runner.detect(image.flippedHorizontally())
        let back = mirrored.map { o -> DetectedObject in
            var m = o
            let c = o.corners
            m.corners = [w - c[2], c[1], w - c[0], c[3]]
            return m
        }
        let expected = DetectorEnsemble.merge(
            plain + back, nmsThreshold: runner.config.test.nmsThreshold,
            maxDetections: runner.config.test.detectionsPerImage)
        let tta = try DetectorEnsemble(
            [runner], names: ["a"],
            augmentation: TestTimeAugmentation(scales: [runner.config.input.minSize], flip: true))
        XCTAssertEqual(tta.passCount, 2)
        XCTAssertEqual(try tta.detect(image), expected)
        // Each confident object of the plain pass has a mirrored-pass box of its class at IoU > 0.8 once mapped back.
        for o in plain where o.score > 0.9 {
            let best = back.filter { $0.label == o.label }.map { iou($0.corners, o.corners) }.max() ?? 0
            XCTAssertGreaterThan(best, 0.8, "\(o.name) at \(o.box)")
        }
    }

    func iou(_ a: [Float], _ b: [Float]) -> Float {
        let w = max(0, min(a[2], b[2]) - max(a[0], b[0])), h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)
    }

    /// Merging by hand: per-class NMS keeps the best of overlapping boxes; box voting averages each kept box
    /// with the boxes it suppressed, weighted by score, and keeps its score; other classes are untouched.
    func testMergeAndBoxVoting() {
        func d(_ box: [Float], _ score: Float, _ label: Int) -> DetectedObject {
            DetectedObject(corners: box, score: score, label: label, name: "c\(label)")
        }
        let a = d([0, 0, 10, 10], 0.9, 1), b = d([1, 0, 11, 10], 0.6, 1)  // IoU 9/11: b suppressed by a
        let c = d([100, 100, 110, 110], 0.8, 1)  // far away: kept
        let e = d([0, 0, 10, 10], 0.7, 2)  // same place, other class: kept
        let f = d([2, 0, 12, 10], 0.3, 1)  // IoU 8/12 with a: suppressed by a
        let merged = DetectorEnsemble.merge([b, c, a, e, f], nmsThreshold: 0.5, maxDetections: 10)
        XCTAssertEqual(merged, [a, c, e])
        let voted = DetectorEnsemble.merge([b, c, a, e, f], nmsThreshold: 0.5, maxDetections: 10, boxVoting: true)
        XCTAssertEqual(voted.map(\.score), [0.9, 0.8, 0.7])
        let x1 = (0.9 * 0 + 0.6 * 1 + 0.3 * 2) / 1.8, x2 = (0.9 * 10 + 0.6 * 11 + 0.3 * 12) / 1.8
        XCTAssertEqual(voted[0].corners[0], Float(x1), accuracy: 1e-5)
        XCTAssertEqual(voted[0].corners[2], Float(x2), accuracy: 1e-5)
        XCTAssertEqual(voted[0].corners[1], 0)
        XCTAssertEqual(voted[1].box, c.box)
        XCTAssertEqual(voted[2].box, e.box)
        XCTAssertEqual(
            DetectorEnsemble.merge([b, c, a, e, f], nmsThreshold: 0.5, maxDetections: 2), [a, c], "top-k after merging")
        XCTAssertEqual(DetectorEnsemble.merge([], nmsThreshold: 0.5, maxDetections: 2), [])
    }

    /// Default scales around the model's size; option lists checked; detectors with different classes refused.
    func testOptionsAndBadInput() throws {
        XCTAssertEqual(
            TestTimeAugmentation.around(minSize: 448), TestTimeAugmentation(scales: [336, 448, 560], flip: true))
        XCTAssertEqual(try TestTimeAugmentation.fromOptions(tta: false, scales: nil, flip: true, minSize: 448), nil)
        XCTAssertEqual(
            try TestTimeAugmentation.fromOptions(tta: false, scales: "400, 500", flip: false, minSize: 448),
            TestTimeAugmentation(scales: [400, 500], flip: false))
        for bad in ["", "400,,500", "8", "abc", "5000", "-448"] {
            XCTAssertThrowsError(try TestTimeAugmentation.fromOptions(tta: true, scales: bad, flip: true, minSize: 448))
            { e in
                XCTAssert("\(e)".contains("--tta-scales"), "\(bad): \(e)")
            }
        }
        var c = DetectorConfig()
        c.backbone.depth = 18; c.backbone.widths = [4, 8, 8, 8]; c.backbone.stemWidth = 4
        c.anchors.sizes = [16, 32]; c.classNames = ["cat", "dog"]
        var other = c
        other.classNames = ["cat", "dog", "bird"]
        let a = DetectorRunner(model: try FasterRCNN(c, seed: 1)),
            b = DetectorRunner(model: try FasterRCNN(other, seed: 1))
        XCTAssertThrowsError(try DetectorEnsemble([a, b], names: ["two.safetensors", "three.safetensors"])) { e in
            XCTAssert(
                "\(e)".contains("three.safetensors detects 3 classes (cat, dog, bird) but two.safetensors detects 2"),
                "\(e)")
        }
        XCTAssertThrowsError(try DetectorEnsemble([], names: []))
    }

    /// The command line: `--tta-scales <model size> --no-tta-flip` writes the same JSON bytes as plain
    /// `detect`; an ensemble of detectors with other classes is refused before any image runs.
    func testCommandLine() throws {
        let (url, _) = try sample()
        let dir = try makeScratchFolder("tta")
        let plain = dir.appendingPathComponent("plain.json"), one = dir.appendingPathComponent("one.json")
        var r = try CommandRunner.run("detect", [url.path, "--json", plain.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CommandRunner.run("detect", [url.path, "--json", one.path, "--tta-scales", "448", "--no-tta-flip"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Data(contentsOf: plain), try Data(contentsOf: one))
        r = try CommandRunner.run("detect", [url.path, "--tta-scales", "448,abc"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("--tta-scales 448,abc"), r.stderr)
    }
}
