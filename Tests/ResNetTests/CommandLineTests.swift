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
        let dir = tempDir()
        let w = dir.appendingPathComponent("w.safetensors").path, log = dir.appendingPathComponent("log.jsonl").path
        let (s, out, err) = try run("train", ["--arch", "cifar_resnet8", "--set", "data.format=shapes", "--set", "data.generated_count=64",
                                               "--iterations", "3", "--batch", "16", "--save", w, "--log", log])
        XCTAssertEqual(s, 0, err)
        XCTAssertTrue(out.contains("saved weights to"), out)
        XCTAssertEqual(try TrainingCurve.readLog(URL(fileURLWithPath: log)).filter { $0.loss != nil }.map(\.iteration), [1, 2, 3])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("log.png").path))

        // classify --json --logits equals the library's logits for the same image.
        var img = RGBImage(width: 32, height: 32, fill: (200, 30, 30))
        img.fillRect(x: 8, y: 8, width: 16, height: 16, color: (20, 20, 220))
        let png = dir.appendingPathComponent("x.png")
        try ImageIO.writePNG(img, to: png)
        let (s2, out2, err2) = try run("classify", [png.path, "--weights", w, "--resize", "none", "--crop", "none", "--json", "--logits", "--topk", "3"])
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
}
