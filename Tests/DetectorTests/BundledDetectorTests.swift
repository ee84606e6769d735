import XCTest
import Foundation
import Detection
import DetectionReport
import Imaging
import Detector
import Evaluation
import Data

/// The bundled demo detector on the bundled samples (never trained on): every annotated object is found
/// with IoU >= 0.7 and the right class, and no detection scoring >= 0.5 is a false positive.
final class BundledDetectorTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testBundledDetectorFindsTheSampleObjects() throws {
        let weights = root.appendingPathComponent("weights/detector.safetensors")
        let runner = try DetectorRunner(checkpoint: weights)
        let samples = try FileManager.default.contentsOfDirectory(
            atPath: root.appendingPathComponent("weights/samples").path
        )
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

/// The bundled detector on a fixed slice of the recipe's held-out test split (images 2200..2239 of seed 2026,
/// generated here exactly as `make-dataset` writes them, JPEG quality 95): the VOC area mAP@0.5 stays above a
/// floor 4 points under the value measured when this test was written (0.9293 on 112 objects; the whole
/// 300-image test split gave 0.925 in the recipe). Unlike the
/// bundled samples, these images were not chosen because they pass.
final class BundledDetectorSliceTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testMAPOnFortyHeldOutTestImages() throws {
        let runner = try DetectorRunner(checkpoint: root.appendingPathComponent("weights/detector.safetensors"))
        XCTAssertEqual(runner.model.config.classNames, SyntheticDetection.classNames)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slice-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        var config = SyntheticDetectionConfig()
        config.jpegQuality = 95
        let indices = Array(2200..<2240)
        var objects: [VOCGroundTruthObject] = [], detections: [Detection] = []
        for (k, index) in indices.enumerated() {
            let (image, truth) = SyntheticDetection.image(index: index, seed: 2026, config: config)
            let jpg = dir.appendingPathComponent(SyntheticDetection.imageName(index) + ".jpg")
            try ImageIO.writeJPEG(image, to: jpg, quality: config.jpegQuality)
            for o in truth {
                let v = o.box.voc
                objects.append(
                    VOCGroundTruthObject(
                        imageIndex: k, classIndex: o.classIndex,
                        box: BoxCorners(
                            xmin: Double(v.xmin), ymin: Double(v.ymin), xmax: Double(v.xmax), ymax: Double(v.ymax)),
                        difficult: false))
            }
            for d in try runner.detect(try ImageIO.read(jpg)) {
                detections.append(
                    Detection(
                        imageIndex: k, categoryIndex: d.label - 1,
                        box: BoxXYWH(
                            x: Double(d.corners[0]), y: Double(d.corners[1]),
                            width: Double(d.corners[2] - d.corners[0]),
                            height: Double(d.corners[3] - d.corners[1])), score: Double(d.score)))
            }
        }
        let gt = VOCGroundTruth(
            imageIDs: indices.map(SyntheticDetection.imageName), classNames: SyntheticDetection.classNames,
            objects: objects)
        let result = evaluateVOC(gt, detections, metric: .voc)
        print(
            String(
                format: "bundled detector, test images 2200..2239: VOC area mAP@0.5 %.4f (%d objects, %d detections)",
                result.mAP, objects.count, detections.count))
        XCTAssertGreaterThan(objects.count, 80)
        XCTAssertGreaterThanOrEqual(result.mAP, 0.89, "measured 0.9293 when written")
    }
}
