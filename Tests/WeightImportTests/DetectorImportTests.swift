import XCTest
import TestSupport
import Foundation
import Engine
import NN
import Detector
import Imaging
import WeightImport

/// A Detectron2 Faster R-CNN R-50-C4 pickle: names, row permutations, config, and the converted detector's
/// outputs against a plain-PyTorch run of Detectron2's inference semantics.
final class DetectorImportTests: XCTestCase {
    func testConvertedNamesValuesAndConfig() throws {
        let imported = try CheckpointImport.load(fixtureURL("d2_c4_detector.pkl"))
        XCTAssertEqual(imported.layout, .detectron2FasterRCNN)
        guard case .detector(let cfg) = imported.kind else { return XCTFail("not a detector") }
        XCTAssertEqual(cfg.backbone.depth, 50)
        XCTAssertEqual(cfg.backbone.widths, [2, 3, 4, 6])
        XCTAssertEqual(cfg.backbone.stemWidth, 4)
        XCTAssertTrue(cfg.backbone.strideInFirstConv)
        XCTAssertEqual(cfg.anchors.sizes, [32, 64, 128, 256, 512])
        XCTAssertEqual(cfg.anchors.aspectRatios, [0.5, 1, 2])
        XCTAssertEqual(cfg.anchors.convention, .detectron2)
        XCTAssertEqual(cfg.roi.pooler, .roialign)
        XCTAssertEqual(cfg.input.pixelFormat, .bgr)
        XCTAssertEqual(cfg.input.mean, [103.53, 116.28, 123.675])
        XCTAssertEqual(cfg.input.std, [1, 1, 1])
        XCTAssertEqual([cfg.input.minSize, cfg.input.maxSize], [800, 1333])
        XCTAssertEqual([cfg.rpn.preNmsTopKTest, cfg.rpn.postNmsTopKTest], [6000, 1000])
        XCTAssertEqual(cfg.classNames, ["class1", "class2", "class3"])
        // The metadata is what detect reads.
        XCTAssertEqual(try FasterRCNN.config(from: imported.metadata, file: "x"), cfg)

        let expected = try ExpectedTensors("d2_c4_expected.safetensors")
        let byName = Dictionary(uniqueKeysWithValues: imported.tensors.map { ($0.name, $0.tensor) })
        let rpn = ["conv": "conv", "objectness_logits": "cls_logits", "anchor_deltas": "bbox_pred"]
        var checked = 0
        for n in expected.names {
            var ours: String?
            if n.hasPrefix("backbone.") {
                ours = NameMapping.detectron2ToTorchvision(String(n.dropFirst(9))).map { "backbone." + $0 }
            } else if n.hasPrefix("roi_heads.res5.") {
                ours = NameMapping.detectron2ToTorchvision(String(n.dropFirst(10))).map {
                    "roi_heads.res5." + $0.dropFirst(7)
                }
            } else if n.hasPrefix("proposal_generator.rpn_head.") {
                let p = n.split(separator: ".")
                ours = "rpn.\(rpn[String(p[2])]!).\(p[3])"
            }
            guard let ours else { continue }
            assertSame(try XCTUnwrap(byName[ours], "\(n) -> \(ours)"), expected.raw(n), n)
            checked += 1
        }
        XCTAssertEqual(checked, expected.names.count - 6)  // all but the 4 predictor tensors and pixel_mean/std

        // cls_score: Detectron2 row K (background) -> row 0, rows 0..K-1 -> 1..K. bbox_pred: zero rows first.
        let k = 3, c = 24
        let cw = expected.raw("roi_heads.box_predictor.cls_score.weight").floats(),
            cb = expected.raw("roi_heads.box_predictor.cls_score.bias").floats()
        let ow = try XCTUnwrap(byName["roi_heads.cls_score.weight"]).floats(),
            ob = try XCTUnwrap(byName["roi_heads.cls_score.bias"]).floats()
        XCTAssertEqual(byName["roi_heads.cls_score.weight"]?.shape, [k + 1, c])
        for r in 0...k {
            let src = r == 0 ? k : r - 1
            XCTAssertEqual(
                Array(ow[(r * c)..<((r + 1) * c)]), Array(cw[(src * c)..<((src + 1) * c)]), "cls_score row \(r)")
            XCTAssertEqual(ob[r], cb[src])
        }
        let bw = expected.raw("roi_heads.box_predictor.bbox_pred.weight").floats(),
            bb = expected.raw("roi_heads.box_predictor.bbox_pred.bias").floats()
        let pw = try XCTUnwrap(byName["roi_heads.bbox_pred.weight"]).floats(),
            pb = try XCTUnwrap(byName["roi_heads.bbox_pred.bias"]).floats()
        XCTAssertEqual(byName["roi_heads.bbox_pred.weight"]?.shape, [4 * (k + 1), c])
        XCTAssertEqual(Array(pw[0..<(4 * c)]), [Float](repeating: 0, count: 4 * c))
        XCTAssertEqual(Array(pb[0..<4]), [0, 0, 0, 0])
        XCTAssertEqual(Array(pw[(4 * c)...]), bw)
        XCTAssertEqual(Array(pb[4...]), bb)
        XCTAssertTrue(try imported.verify().contains("strict"))

        // Class names from options; a wrong count is refused.
        let named = try CheckpointImport.load(
            fixtureURL("d2_c4_detector.pkl"), options: ImportOptions(classNames: ["cat", "dog", "cow"]))
        guard case .detector(let c2) = named.kind else { return XCTFail() }
        XCTAssertEqual(c2.classNames, ["cat", "dog", "cow"])
        XCTAssertTrue(
            errorMessage {
                _ = try CheckpointImport.load(
                    fixtureURL("d2_c4_detector.pkl"), options: ImportOptions(classNames: ["a"]))
            }.contains("3 classes"))
        XCTAssertTrue(
            errorMessage {
                _ = try CheckpointImport.load(
                    fixtureURL("d2_c4_detector.pkl"), options: ImportOptions(anchorSizes: [32, 64]))
            }.contains("15 anchors"))
    }

    /// The converted checkpoint, run by DetectorRunner, reproduces Detectron2's anchors, RPN outputs,
    /// proposals and head outputs (background column moved first).
    func testConvertedDetectorMatchesDetectron2Semantics() throws {
        let runner = try DetectorRunner(checkpoint: fixtureURL("d2_c4_detector.pkl"))
        runner.config.input.minSize = 0
        runner.config.input.maxSize = 0
        let ref = try SafeTensorsFile(contentsOf: fixtureURL("d2_c4_reference.safetensors"))
        let image = try ImageIO.read(fixtureURL("d2_image.png"))
        let prepared = try Preprocess.prepare(image, input: runner.config.input)
        XCTAssertEqual(prepared.tensor.shape, [1, 3, 96, 128])
        let model = runner.model
        try GradMode.withoutGrad {
            let f = model.backbone(prepared.tensor)
            assertClose(f, try ref.tensor("features"), rtol: 1e-4, atol: 0, "features")
            let (logits, deltas) = model.rpn(f)
            assertClose(logits, try ref.tensor("rpn_logits"), rtol: 1e-4, atol: 0, "rpn logits")
            assertClose(deltas, try ref.tensor("rpn_deltas"), rtol: 1e-4, atol: 0, "rpn deltas")
            let anchors = model.rpn.anchorGenerator.anchors(featureHeight: 6, featureWidth: 8)
            XCTAssertEqual(
                anchors.scalars, try ref.tensor("anchors").scalars, "anchors (Detectron2's order and values)")
        }
        let trace = GradMode.withoutGrad { runner.run(prepared) }
        let proposals = try ref.tensor("proposals")
        XCTAssertGreaterThan(proposals.shape[0], 50)
        XCTAssertEqual(trace.proposals.shape, proposals.shape)
        assertClose(trace.proposals, proposals, rtol: 0, atol: 0.02, "proposals (in order)")
        assertClose(
            Tensor(trace.proposalScores, shape: [trace.proposalScores.count]), try ref.tensor("proposal_scores"),
            rtol: 1e-4, atol: 0, "proposal scores")
        let k = 3
        let refCls = try ref.tensor("class_logits"), refBox = try ref.tensor("box_deltas")
        let r = refCls.shape[0]
        XCTAssertEqual(trace.classLogits.shape, [r, k + 1])
        // Ours: background first. Reference (Detectron2): background last.
        var permuted = [Float](), objectDeltas = [Float]()
        for i in 0..<r {
            permuted.append(refCls.data[i * (k + 1) + k])
            for j in 0..<k { permuted.append(refCls.data[i * (k + 1) + j]) }
            XCTAssertEqual(Array(trace.boxDeltas.scalars[(i * 4 * (k + 1))..<(i * 4 * (k + 1) + 4)]), [0, 0, 0, 0])
            objectDeltas += Array(trace.boxDeltas.scalars[(i * 4 * (k + 1) + 4)..<((i + 1) * 4 * (k + 1))])
        }
        assertClose(trace.classLogits, Tensor(permuted, shape: [r, k + 1]), rtol: 1e-4, atol: 0, "class logits")
        assertClose(Tensor(objectDeltas, shape: [r, 4 * k]), refBox, rtol: 1e-4, atol: 0, "box deltas")
    }

}
