import XCTest
import Foundation
import Imaging
import Detector
import Evaluation

/// The bundled demo detector on the bundled samples (never trained on): every annotated object is found
/// with IoU >= 0.7 and the right class, and no detection scoring >= 0.5 is a false positive.
final class BundledDetectorTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testBundledDetectorFindsTheSampleObjects() throws {
        let weights = root.appendingPathComponent("weights/detector.safetensors")
        let runner = try DetectorRunner(checkpoint: weights)
        let samples = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("weights/samples").path)
            .filter { $0.hasPrefix("detect_") && $0.hasSuffix(".jpg") }.sorted()
        XCTAssertGreaterThanOrEqual(samples.count, 2)
        for name in samples {
            let jpg = root.appendingPathComponent("weights/samples/\(name)")
            let xml = jpg.deletingPathExtension().appendingPathExtension("xml")
            let gt = try VOCGroundTruth.parseAnnotation(Data(contentsOf: xml), file: xml.path)
            let found = try runner.detect(try ImageIO.read(jpg))
            let c = DetectionOutput.check(found, against: gt, minIoU: 0.7, minScore: 0.5)
            XCTAssertGreaterThan(c.objects, 0)
            XCTAssertTrue(c.passed, "\(name): \(c.summary(minIoU: 0.7, fpScore: 0.5)); detections \(found.prefix(8))")
        }
    }
}
