import XCTest
import TestSupport
import Detection
import Foundation
import Engine
import NN
import ResNet
import Classification
import Detector
import Imaging
import WeightImport

/// Classification weights: torchvision .pth, Detectron2-named and Caffe2-named backbone .pkl files.
final class ClassificationImportTests: XCTestCase {
    /// A torchvision ResNet-18 (narrow) saved with torch.save gives PyTorch's logits through `classify`'s path.
    func testTorchvisionResNet18LogitsMatchPyTorch() throws {
        let file = try CheckpointImport.open(fixtureURL("tv_resnet18_narrow.pth"), arch: nil)
        let cfg = try ModelIO.config(for: file, arch: nil)
        XCTAssertEqual(cfg.layers, [2, 2, 2, 2])
        XCTAssertEqual(cfg.widths, [4, 8, 12, 16])
        XCTAssertEqual(cfg.stemWidth, 4)
        XCTAssertEqual(cfg.block, .basic)
        XCTAssertEqual(cfg.shortcut, .B)
        XCTAssertEqual(cfg.numClasses, 10)
        XCTAssertEqual(cfg.name, "resnet18")
        XCTAssertFalse(cfg.strideInFirst1x1)
        XCTAssertNoThrow(try ModelIO.config(for: file, arch: "resnet18"))
        let net = ResNet(cfg)
        try net.load(file)  // strict: every name (num_batches_tracked included) and shape
        var clf = Classifier(model: net)
        clf.resize = 0; clf.crop = .none
        let (logits, _) = try clf.predict(try ImageIO.read(fixtureURL("tv_input64.png")))
        let ref = try SafeTensorsFile(contentsOf: fixtureURL("tv_resnet18_narrow_logits.safetensors")).tensor("logits")
            .scalars
        let scale = ref.map { abs($0) }.max()!
        XCTAssertEqual(logits.count, ref.count)
        for (a, b) in zip(logits, ref) { XCTAssertEqual(a, b, accuracy: 1e-4 * scale) }

        let wrong = errorMessage {
            _ = try CheckpointImport.open(fixtureURL("tv_resnet18_narrow.pth"), arch: "resnet50")
        }
        XCTAssertTrue(wrong.contains("resnet18") && wrong.contains("--arch resnet50"), wrong)
        let wrongFrom = errorMessage {
            _ = try CheckpointImport.load(
                fixtureURL("tv_resnet18_narrow.pth"), options: ImportOptions(from: .detectron2))
        }
        XCTAssertTrue(wrongFrom.contains("--from detectron2") && wrongFrom.contains("torchvision ResNet"), wrongFrom)
    }

    /// Detectron2's torchvision-converted backbone format: names mapped, values bit for bit, stride on the 3x3.
    func testDetectron2BackboneMapsToTorchvisionNames() throws {
        let imported = try CheckpointImport.load(fixtureURL("d2_backbone.pkl"))
        XCTAssertEqual(imported.layout, .detectron2Backbone)
        guard case .classifier(let cfg) = imported.kind else { return XCTFail("not a classifier") }
        XCTAssertEqual(cfg.layers, [3, 4, 6, 3])
        XCTAssertEqual(cfg.widths, [2, 3, 4, 6])
        XCTAssertEqual(cfg.stemWidth, 4)
        XCTAssertEqual(cfg.numClasses, 10)
        XCTAssertFalse(cfg.strideInFirst1x1, "__author__ torchvision: torchvision's stride on the 3x3")
        let expected = try ExpectedTensors("d2_backbone_expected.safetensors")
        let byName = Dictionary(uniqueKeysWithValues: imported.tensors.map { ($0.name, $0.tensor) })
        XCTAssertEqual(byName.count, expected.names.count)
        for n in expected.names {
            let ours = try XCTUnwrap(NameMapping.detectron2ToTorchvision(n), n)
            assertSame(try XCTUnwrap(byName[ours], ours), expected.raw(n), n)
        }
        XCTAssertEqual(byName["layer4.2.conv3.weight"]?.dtype, .f64)
        XCTAssertEqual(byName["layer2.0.downsample.1.num_batches_tracked"]?.dtype, .i64)
        XCTAssertEqual(NameMapping.detectron2ToTorchvision("stem.conv1.norm.running_var"), "bn1.running_var")
        XCTAssertEqual(NameMapping.detectron2ToTorchvision("res3.0.shortcut.norm.bias"), "layer2.0.downsample.1.bias")
        XCTAssertEqual(NameMapping.detectron2ToTorchvision("res5.2.conv2.norm.weight"), "layer4.2.bn2.weight")
        XCTAssertNil(NameMapping.detectron2ToTorchvision("res5.2.conv4.weight"))
        XCTAssertTrue(try imported.verify().contains("strict"))
        // The same file as a safetensors view loads into the ResNet it describes.
        let file = try imported.safeTensorsFile()
        let net = ResNet(try ModelIO.config(for: file, arch: "resnet50"))
        XCTAssertNoThrow(try net.load(file))
    }

    /// MSRA / Caffe2 names (Python 2 pickle): stride on the first 1x1, missing BN statistics filled as
    /// Detectron2 does, momentum blobs dropped; usable as a detector backbone.
    func testCaffe2BackboneForFinetuning() throws {
        let imported = try CheckpointImport.load(fixtureURL("caffe2_backbone.pkl"))
        XCTAssertEqual(imported.layout, .caffe2Backbone)
        guard case .classifier(let cfg) = imported.kind else { return XCTFail("not a classifier") }
        XCTAssertTrue(cfg.strideInFirst1x1)
        XCTAssertEqual(imported.metadata["input_format"], "bgr")
        let expected = try ExpectedTensors("caffe2_backbone_expected.safetensors")
        let byName = Dictionary(uniqueKeysWithValues: imported.tensors.map { ($0.name, $0.tensor) })
        for n in expected.names where !n.hasSuffix("_momentum") {
            let ours = try XCTUnwrap(NameMapping.caffe2ToDetectron2(n).flatMap(NameMapping.detectron2ToTorchvision), n)
            assertSame(try XCTUnwrap(byName[ours], ours), expected.raw(n), n)
        }
        XCTAssertNil(byName.keys.first { $0.contains("momentum") })
        XCTAssertEqual(byName["layer3.0.bn2.running_mean"]?.floats(), [Float](repeating: 0, count: 4))
        XCTAssertEqual(byName["bn1.running_var"]?.floats(), [Float](repeating: 1, count: 4))
        XCTAssertEqual(NameMapping.caffe2ToDetectron2("res4_5_branch2c_bn_s"), "res4.5.conv3.norm.weight")
        XCTAssertEqual(NameMapping.caffe2ToDetectron2("res_conv1_bn_b"), "stem.conv1.norm.bias")
        XCTAssertEqual(NameMapping.caffe2ToDetectron2("res2_0_branch1_w"), "res2.0.shortcut.weight")
        XCTAssertTrue(try imported.verify().contains("strict"))

        // finetune --backbone: the trunk and res5 of a matching detector load from it.
        var dc = DetectorConfig()
        dc.backbone.depth = 50
        dc.backbone.widths = [2, 3, 4, 6]
        dc.backbone.stemWidth = 4
        dc.backbone.strideInFirstConv = true
        dc.classNames = ["a", "b"]
        let model = try FasterRCNN(dc)
        try model.loadBackbone(try CheckpointImport.open(fixtureURL("caffe2_backbone.pkl"), arch: nil))
        let w = try imported.safeTensorsFile().tensor("layer4.1.conv2.weight")
        XCTAssertEqual(model.roiHeads.res5.namedParameters().first { $0.0 == "1.conv2.weight" }?.1.scalars, w.scalars)
    }
}
