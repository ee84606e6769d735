import XCTest
import TestSupport
import Foundation
import Engine
import NN
import ResNet
import Data
import Imaging
import Classification

/// Parity with PyTorch (fixtures from scripts/fixtures/resnet_fixtures.py).
final class TorchParityTests: XCTestCase {
    /// Our formula implementation reproduces the fixture script's ResNet-18 state dict value by value: per
    /// tensor the sum, the position-weighted sum sum((i + 1) * v_i) (a permutation inside a tensor changes
    /// it) and 16 sampled values bit for bit (scripts/fixtures/formula_checks.py); the PyTorch-side
    /// checksums of logits_torchvision.safetensors agree too.
    func testFormulaWeightsMatchTheFixtureScriptValueByValue() throws {
        let f = try SafeTensorsFile(contentsOf: fixtureURL("logits_torchvision.safetensors"))
        let checks =
            try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("weight_formula_checks.json")))
            as! [String: Any]
        let expected = checks["tensors"] as! [String: [String: Any]]
        let net = ResNet(try ResNetConfig.named("resnet18"))
        let file = try FormulaWeights.file(for: net)
        var checked = 0
        for name in file.names where !name.hasSuffix("num_batches_tracked") {
            let t = try file.tensor(name)
            let e = try XCTUnwrap(expected[name], name)
            XCTAssertEqual(t.count, e["count"] as? Int, name)
            var s: Double = 0, weighted: Double = 0
            for i in 0..<t.count { s += Double(t.data[i]); weighted += Double(i + 1) * Double(t.data[i]) }
            let refSum = e["sum"] as! Double, refWeighted = e["weighted_sum"] as! Double
            XCTAssertEqual(s, refSum, accuracy: 1e-9 * max(1, abs(refSum)), name)
            let magnitude = (0..<t.count).reduce(0.0) { $0 + Double($1 + 1) * Double(abs(t.data[$1])) }
            XCTAssertEqual(weighted, refWeighted, accuracy: 1e-12 * magnitude + 1e-9, "\(name) (position-weighted)")
            for pair in e["samples"] as! [[Any]] {
                let i = pair[0] as! Int, bits = UInt32((pair[1] as! String).dropFirst(2), radix: 16)!
                XCTAssertEqual(t.data[i].bitPattern, bits, "\(name)[\(i)]")
            }
            XCTAssertEqual(
                Float(s), try f.tensor("resnet18.checksum." + name).item(), accuracy: abs(Float(s)) * 1e-6 + 1e-6, name)
            checked += 1
        }
        XCTAssertEqual(checked, 102)
        XCTAssertEqual(expected.count, 102)
    }

    /// The formula's building blocks against weight_formula.json's test vectors (written by the Python side).
    func testFormulaTestVectors() throws {
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("weight_formula.json")))
            as! [String: Any]
        let vectors = json["test_vectors"] as! [String: Any]
        for (text, value) in vectors["fnv1a32"] as! [String: Int] {
            XCTAssertEqual(Int(FormulaWeights.fnv1a32(text)), value, text)
        }
        for (text, value) in vectors["mix32"] as! [String: Int] {
            XCTAssertEqual(Int(FormulaWeights.mix32(UInt32(text)!)), value, text)
        }
        let values = vectors["values"] as! [[String: Any]]
        XCTAssertEqual(values.count, 8)
        let fcIn = 512
        for v in values {
            let name = v["name"] as! String, shape = v["shape"] as! [Int]
            let t = FormulaWeights.tensor(name, shape: shape, fcIn: fcIn)
            for first in v["first"] as! [[String: Any]] {
                let i = first["i"] as! Int
                let bits = UInt32((first["value_f32_bits"] as! String).dropFirst(2), radix: 16)!
                XCTAssertEqual(t.data[i].bitPattern, bits, "\(name)[\(i)]")
                XCTAssertEqual(
                    Int(FormulaWeights.mix32(FormulaWeights.fnv1a32(name) &+ UInt32(i) &* 0x9E37_79B9)),
                    first["mix"] as? Int)
            }
        }
    }

    /// torchvision-named ResNet-18/50/101 weights give PyTorch's eval-mode logits on a 224x224 PNG, used
    /// as is (`classify --resize none --crop none`), within 1e-4 relative to the largest logit.
    func testClassifyLogitsMatchTorchvision() throws {
        let f = try SafeTensorsFile(contentsOf: fixtureURL("logits_torchvision.safetensors"))
        let image = try ImageIO.read(fixtureURL("input224.png"))
        let dir = try makeScratchFolder("resnet")
        for arch in ["resnet18", "resnet50", "resnet101"] {
            // Write the torchvision state dict to a file, then load it the way `classify` does.
            let url = dir.appendingPathComponent("\(arch).safetensors")
            let file = try FormulaWeights.file(for: ResNet(try ResNetConfig.named(arch)))
            var w = SafeTensorsWriter()
            for n in file.names {
                if n.hasSuffix("num_batches_tracked") { w.add(n, int64: 0) } else { w.add(n, try file.tensor(n)) }
            }
            try w.write(to: url)
            let (net, _) = try ModelIO.load(url, arch: arch)
            var clf = Classifier(model: net)
            clf.resize = 0; clf.crop = .none
            let (logits, _) = try clf.predict(image)
            let ref = try f.tensor("\(arch).logits").scalars
            let scale = ref.map { abs($0) }.max()!
            let diff = zip(logits, ref).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-4 * scale, "\(arch): max diff \(diff), largest logit \(scale)")
            XCTAssertEqual(logits.indices.max { logits[$0] < logits[$1] }, ref.indices.max { ref[$0] < ref[$1] }, arch)
        }
    }

    /// Five iterations of CIFAR ResNet-20 training (batch 32, lr 0.1, momentum 0.9, wd 1e-4, BN in train
    /// mode, no augmentation, file order) reproduce PyTorch's losses and final weights.
    func testCIFARTrainingMatchesTorch() throws {
        let dir = try makeScratchFolder("resnet")
        let initURL = dir.appendingPathComponent("init.safetensors")
        let file = try FormulaWeights.file(for: ResNet(try ResNetConfig.named("cifar_resnet20")))
        var w = SafeTensorsWriter()
        for n in file.names {
            if n.hasSuffix("num_batches_tracked") { w.add(n, int64: 0); continue }
            let t = try file.tensor(n)
            // As the fixture script (for conditioning; see there): fc x 0.1, conv weights x 10.
            if n == "fc.weight" { for i in 0..<t.count { t.data[i] *= Float(0.1) } }
            if t.rank == 4 { for i in 0..<t.count { t.data[i] *= Float(10) } }
            w.add(n, t)
        }
        try w.write(to: initURL)

        var cfg = TrainConfig()
        cfg.arch = "cifar_resnet20"
        cfg.data.path = fixtureURL("cifar_small.bin").path
        cfg.train.batchSize = 32; cfg.train.iterations = 5; cfg.train.lr = 0.1
        cfg.train.augment = false; cfg.train.shuffle = false; cfg.train.milestones = []
        var opts = RunOptions()
        opts.initWeights = initURL
        opts.quiet = true
        let trainer = try Trainer(config: cfg, options: opts)
        try trainer.run()

        let ref = try SafeTensorsFile(contentsOf: fixtureURL("cifar20_train.safetensors"))
        let losses = try ref.tensor("losses").scalars
        let ours = trainer.log.compactMap { $0.loss }
        XCTAssertEqual(ours.count, 5)
        for (i, (a, b)) in zip(ours, losses).enumerated() {
            XCTAssertEqual(a, b, accuracy: 1e-3 * abs(b), "loss of iteration \(i)")
        }
        var worst: (Float, String) = (0, "")
        for (name, t) in trainer.model.namedParameters() + trainer.model.namedBuffers() {
            let r = try ref.tensor("final." + name)
            let scale = max(r.scalars.map { abs($0) }.max()!, 1e-3)
            let d = t.maxAbsDiff(r) / scale
            if d > worst.0 { worst = (d, name) }
        }
        XCTAssertLessThanOrEqual(worst.0, 1e-3, "final weights: worst relative difference \(worst.0) in \(worst.1)")
        XCTAssertEqual(trainer.model.bn1.numBatchesTracked.value, 5)
    }
}

final class InputFormatTests: XCTestCase {
    /// A checkpoint marked `input_format: bgr` (MSRA weights imported by WeightImport) is fed BGR pixels
    /// minus the MSRA means: the classifier's logits equal the network on that hand-built input.
    func testBGRInputMetadata() throws {
        var cfg = try ResNetConfig.named("cifar_resnet8")
        cfg.numClasses = 4
        let net = ResNet(cfg, seed: 3)
        var clf = Classifier(model: net)
        clf.applyInputMetadata([
            "input_format": "bgr", "pixel_mean": "[103.53, 116.28, 123.675]", "pixel_std": "[1, 1, 1]"
        ])
        XCTAssertTrue(clf.bgr)
        var img = RGBImage(width: 32, height: 32, fill: (200, 40, 10))
        img.fillRect(x: 4, y: 6, width: 10, height: 12, color: (5, 90, 250))
        let (logits, _) = try clf.predict(img)
        let x = Tensor(uninitialized: [1, 3, 32, 32])
        let mean: [Float] = [103.53, 116.28, 123.675]
        for c in 0..<3 { for p in 0..<1024 { x.data[c * 1024 + p] = Float(img.pixels[p * 3 + (2 - c)]) - mean[c] } }
        let ref = GradMode.withoutGrad { net(x) }.scalars
        for (a, b) in zip(logits, ref) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(b))) }
        // Without the metadata nothing changes.
        var plain = Classifier(model: net)
        plain.applyInputMetadata(["arch": "cifar_resnet8"])
        XCTAssertFalse(plain.bgr)
    }
}
