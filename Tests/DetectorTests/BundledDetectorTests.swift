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
            func iou(_ a: [Float], _ b: BoxCorners) -> Float {
                let iw = max(0, min(a[2], Float(b.xmax)) - max(a[0], Float(b.xmin))), ih = max(0, min(a[3], Float(b.ymax)) - max(a[1], Float(b.ymin)))
                let inter = iw * ih
                return inter / ((a[2] - a[0]) * (a[3] - a[1]) + Float((b.xmax - b.xmin) * (b.ymax - b.ymin)) - inter)
            }
            for o in gt {
                let best = found.filter { $0.name == o.name }.map { iou($0.box, o.box) }.max() ?? 0
                XCTAssertGreaterThanOrEqual(best, 0.7, "\(name): \(o.name) at \(o.box) not found (best IoU \(best)); detections \(found.prefix(5))")
            }
            for d in found where d.score >= 0.5 {
                XCTAssertTrue(gt.contains { $0.name == d.name && iou(d.box, $0.box) >= 0.5 }, "\(name): false positive \(d)")
            }
        }
    }
}
