import XCTest
import TestSupport
import Foundation
import NN
import Detector
import WeightImport

/// The `convert` executable as a user runs it.
final class ConvertCommandTests: XCTestCase {

    func run(_ args: [String]) throws -> (Int32, String, String) { try CommandRunner.run("convert", args) }

    func testConvertDetectorAndClassifier() throws {
        let dir = try makeScratchFolder("weightimport")
        let det = dir.appendingPathComponent("det.safetensors")
        let (s, out, err) = try run([fixtureURL("d2_c4_detector.pkl").path, "--out", det.path])
        XCTAssertEqual(s, 0, err)
        XCTAssertTrue(out.contains("Detectron2 Faster R-CNN C4") && out.contains("Faster R-CNN R50-C4, 3 classes"), out)
        XCTAssertTrue(out.contains("verified: loads into") && out.contains("wrote \(det.path)"), out)
        // The written file is a plain detector checkpoint: detect's own loader takes it.
        let runner = try DetectorRunner(checkpoint: det)
        XCTAssertEqual(runner.config.anchors.convention, .detectron2)
        XCTAssertEqual(runner.config.classNames, ["class1", "class2", "class3"])

        let cls = dir.appendingPathComponent("r18.safetensors")
        let (s2, out2, err2) = try run([
            fixtureURL("tv_resnet18_narrow.pth").path, "--out", cls.path, "--from", "torchvision", "--arch", "resnet18"
        ])
        XCTAssertEqual(s2, 0, err2)
        XCTAssertTrue(out2.contains("resnet18") && out2.contains("I64"), out2)
        let file = try SafeTensorsFile(contentsOf: cls)
        XCTAssertEqual(file.metadata["arch"], "resnet18")
        XCTAssertEqual(
            Set(file.names),
            Set(try CheckpointImport.contents(of: fixtureURL("tv_resnet18_narrow.pth")).tensors.map(\.name)))
    }

    func testConvertRefusesBadInputAndWritesNothing() throws {
        let dir = try makeScratchFolder("weightimport")
        let dst = dir.appendingPathComponent("x.safetensors")
        for (args, needle) in [
            ([fixtureURL("tv_resnet18_narrow.pth").path, "--arch", "resnet50"], "--arch resnet50"),
            ([fixtureURL("d2_c4_detector.pkl").path, "--from", "torchvision"], "--from torchvision"),
            ([fixtureURL("zip_bomb_declared.pth").path], "zip bomb"),
            ([fixtureURL("zip_dotdot.pth").path], "outside the archive"),
            ([dir.appendingPathComponent("missing.pth").path], "cannot open")
        ] {
            let (s, _, err) = try run(args + ["--out", dst.path])
            XCTAssertNotEqual(s, 0, "\(args)")
            XCTAssertTrue(err.contains(needle), "\(args): \(err)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dst.path))
        }
        let (s, _, err) = try run(["--out", dst.path])
        XCTAssertNotEqual(s, 0)
        XCTAssertTrue(err.contains("source"), err)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
