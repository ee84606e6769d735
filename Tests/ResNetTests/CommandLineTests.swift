import Foundation
import XCTest
import TestSupport
import Engine
import ResNet
import Classification
import Imaging

/// `train` and `classify` run as a user would: exit status, output, files written.
final class ClassificationCommandLineTests: XCTestCase {

    func run(_ name: String, _ args: [String]) throws -> (Int32, String, String) { try CommandRunner.run(name, args) }

    func testTrainThenClassify() throws {
        let dir = try makeScratchFolder("resnet")
        let w = dir.appendingPathComponent("w.safetensors").path, log = dir.appendingPathComponent("log.jsonl").path
        let (s, out, err) = try run(
            "train",
            [
                "--arch", "cifar_resnet8", "--set", "data.format=shapes", "--set", "data.generated_count=64",
                "--iterations", "3", "--batch", "16", "--save", w, "--log", log
            ])
        XCTAssertEqual(s, 0, err)
        XCTAssertTrue(out.contains("saved weights to"), out)
        XCTAssertEqual(
            try TrainingCurve.readLog(URL(fileURLWithPath: log)).filter { $0.loss != nil }.map(\.iteration), [1, 2, 3])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("log.png").path))

        // classify --json --logits equals the library's logits for the same image.
        var img = RGBImage(width: 32, height: 32, fill: (200, 30, 30))
        img.fillRect(x: 8, y: 8, width: 16, height: 16, color: (20, 20, 220))
        let png = dir.appendingPathComponent("x.png")
        try ImageIO.writePNG(img, to: png)
        let (s2, out2, err2) = try run(
            "classify",
            [png.path, "--weights", w, "--resize", "none", "--crop", "none", "--json", "--logits", "--topk", "3"])
        XCTAssertEqual(s2, 0, err2)
        let obj = try JSONSerialization.jsonObject(with: Data(out2.utf8)) as! [String: Any]
        let logits = (obj["logits"] as! [Double]).map { Float($0) }
        let (net, _) = try ModelIO.load(URL(fileURLWithPath: w), arch: nil)
        var clf = Classifier(model: net)
        clf.resize = 0; clf.crop = .none
        let (ref, _) = try clf.predict(img)
        XCTAssertEqual(logits.count, 10)
        for (a, b) in zip(logits, ref) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
        XCTAssertEqual((obj["top"] as! [[String: Any]]).count, 3)

        // Bad input: a labels file of the wrong length, a missing image, an unknown recipe key.
        let labels = dir.appendingPathComponent("labels.txt")
        try "a\nb\n".write(to: labels, atomically: true, encoding: .utf8)
        let (s3, _, err3) = try run("classify", [png.path, "--weights", w, "--labels", labels.path])
        XCTAssertNotEqual(s3, 0)
        XCTAssertTrue(err3.contains("has 2 labels but the network has 10 classes"), err3)
        let (s4, _, err4) = try run("classify", [dir.appendingPathComponent("missing.png").path, "--weights", w])
        XCTAssertNotEqual(s4, 0)
        XCTAssertTrue(err4.contains("missing.png"), err4)
        let (s5, _, err5) = try run("train", ["--set", "train.learning_rate=0.1"])
        XCTAssertNotEqual(s5, 0)
        XCTAssertTrue(err5.contains("unknown key \"train.learning_rate\""), err5)
        let (s6, _, err6) = try run("classify", [png.path, "--weights", w, "--arch", "resnet50"])
        XCTAssertNotEqual(s6, 0)
        XCTAssertTrue(err6.contains("cifar_resnet8"), err6)
    }

    /// Ensembles and multi-scale testing against a direct computation: the ensemble's probabilities are the
    /// mean of each model's `classify --json` output, `--scales` the mean of single-scale runs; a `--data` run
    /// tabulates every member and the ensemble; mismatched class counts and bad scale lists are refused.
    func testEnsembleAndMultiScale() throws {
        let dir = try makeScratchFolder("resnet")
        var models: [String] = []
        for seed in 1...2 {
            let w = dir.appendingPathComponent("m\(seed).safetensors").path
            let (s, _, err) = try run(
                "train",
                [
                    "--arch", "cifar_resnet8", "--set", "data.format=shapes", "--set", "data.generated_count=64",
                    "--set", "train.seed=\(seed)", "--iterations", "3", "--batch", "16", "--save", w
                ])
            XCTAssertEqual(s, 0, err)
            models.append(w)
        }
        var img = RGBImage(width: 40, height: 36, fill: (30, 160, 30))
        img.fillDisc(x: 20, y: 18, diameter: 20, color: (220, 220, 20))
        let png = dir.appendingPathComponent("x.png")
        try ImageIO.writePNG(img, to: png)
        func probabilities(_ args: [String]) throws -> [Int: Double] {
            let (s, out, err) = try run("classify", [png.path, "--json", "--topk", "10"] + args)
            XCTAssertEqual(s, 0, err)
            let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            return Dictionary(
                uniqueKeysWithValues: (obj["top"] as! [[String: Any]]).map {
                    ($0["class"] as! Int, $0["probability"] as! Double)
                })
        }
        let a = try probabilities(["--weights", models[0]]), b = try probabilities(["--weights", models[1]])
        let both = try probabilities(["--weights", models[0], "--weights", models[1]])
        XCTAssertEqual(both.count, 10)
        XCTAssertGreaterThan(
            zip(a.sorted { $0.key < $1.key }, b.sorted { $0.key < $1.key }).map { abs($0.value - $1.value) }.max()!,
            1e-3,
            "two different models: the check is not vacuous")
        for k in 0..<10 { XCTAssertEqual(both[k]!, (a[k]! + b[k]!) / 2, accuracy: 1e-6, "class \(k)") }

        let s32 = try probabilities(["--weights", models[0], "--resize", "32", "--crop", "none"])
        let s48 = try probabilities(["--weights", models[0], "--resize", "48", "--crop", "none"])
        let multi = try probabilities(["--weights", models[0], "--scales", "32,48"])
        XCTAssertGreaterThan((0..<10).map { abs(s32[$0]! - s48[$0]!) }.max()!, 1e-4, "the scales differ")
        for k in 0..<10 { XCTAssertEqual(multi[k]!, (s32[k]! + s48[k]!) / 2, accuracy: 1e-6, "class \(k)") }

        // --data: one row per member and one for the ensemble.
        let folder = dir.appendingPathComponent("val")
        for (c, color) in [(0, (200, 20, 20)), (1, (20, 20, 200))] as [(Int, (UInt8, UInt8, UInt8))] {
            let sub = folder.appendingPathComponent("c\(c)")
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            for i in 0..<3 {
                var im = RGBImage(width: 32, height: 32, fill: color)
                im.fillRect(x: 4 * i, y: 4, width: 10, height: 10, color: (240, 240, 240))
                try ImageIO.writePNG(im, to: sub.appendingPathComponent("\(i).png"))
            }
        }
        let (s1, table, err1) = try run(
            "classify",
            [
                "--data", folder.path, "--weights", models[0], "--weights", models[1],
                "--labels", labels(dir)
            ])
        XCTAssertEqual(s1, 0, err1)
        XCTAssert(
            table.contains("m1.safetensors") && table.contains("m2.safetensors")
                && table.contains("ensemble (mean of 2)")
                && table.contains("(6 images)"), table)
        let (s2, json, err2) = try run(
            "classify",
            [
                "--data", folder.path, "--weights", models[0], "--weights", models[1],
                "--labels", labels(dir), "--json"
            ])
        XCTAssertEqual(s2, 0, err2)
        let rows =
            (try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any])["models"] as! [[String: Any]]
        XCTAssertEqual(rows.count, 3)
        XCTAssert(rows.allSatisfy { (0...1).contains($0["top1_error"] as! Double) })

        // Bad input.
        let twelve = dir.appendingPathComponent("m12.safetensors").path
        let (s3, _, err3) = try run(
            "train",
            [
                "--arch", "cifar_resnet8", "--set", "data.format=shapes", "--set", "data.generated_count=32",
                "--set", "num_classes=12", "--iterations", "1", "--batch", "16", "--save", twelve
            ])
        XCTAssertEqual(s3, 0, err3)
        let (s4, _, err4) = try run("classify", [png.path, "--weights", models[0], "--weights", twelve])
        XCTAssertNotEqual(s4, 0)
        XCTAssert(err4.contains("m12.safetensors has 12 classes but m1.safetensors has 10"), err4)
        for bad in ["", "32,,48", "0", "abc", "5000"] {
            let (s5, _, err5) = try run("classify", [png.path, "--weights", models[0], "--scales", bad])
            XCTAssertNotEqual(s5, 0, bad)
            XCTAssert(err5.contains("--scales"), "\(bad): \(err5)")
        }
    }

    /// Ten class names for the shape models (the labels file maps the two folder classes onto them).
    func labels(_ dir: URL) throws -> String {
        let url = dir.appendingPathComponent("names.txt")
        try ((0..<10).map { "c\($0)" }.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
