import XCTest
import TestSupport
import Foundation
import Engine
import NN
import ResNet
import Data
import Support
import Classification
import Imaging

final class TrainingTests: XCTestCase {
    func smallConfig(_ data: URL, iterations: Int) -> TrainConfig {
        var cfg = TrainConfig()
        cfg.arch = "cifar_resnet8"
        cfg.data.path = data.path
        cfg.train.batchSize = 16; cfg.train.iterations = iterations; cfg.train.lr = 0.05
        cfg.train.milestones = []; cfg.train.checkpointEvery = 3; cfg.train.validateEvery = 0
        return cfg
    }

    /// A run killed after 3 iterations and resumed from its checkpoint ends with exactly the weights,
    /// momentum and log of an uninterrupted run (augmentation and shuffling on, crossing an epoch).
    func testKillAndResumeGivesIdenticalWeights() throws {
        let dir = try makeScratchFolder("resnet")
        let data = dir.appendingPathComponent("shapes.bin")
        let ds = SyntheticShapes.make(count: 80, seed: 1)
        try CIFARDataset.write(pixels: ds.pixels, labels: ds.labels, to: data)
        let cfg = smallConfig(data, iterations: 7)  // 5 batches per epoch: crosses into epoch 2

        var full = RunOptions(); full.quiet = true
        let a = try Trainer(config: cfg, options: full)
        try a.run()

        var first = RunOptions(); first.quiet = true; first.checkpointDir = dir; first.stopAfter = 3
        let b1 = try Trainer(config: cfg, options: first)
        try b1.run()
        var second = RunOptions(); second.quiet = true; second.checkpointDir = dir
        second.resume = dir.appendingPathComponent("checkpoint.safetensors")
        let b2 = try Trainer(config: cfg, options: second)
        XCTAssertEqual(b2.iteration, 3)
        try b2.run()

        for ((n, x), (_, y)) in zip(
            a.model.namedParameters() + a.model.namedBuffers(), b2.model.namedParameters() + b2.model.namedBuffers())
        {
            XCTAssertEqual(x.scalars.map(\.bitPattern), y.scalars.map(\.bitPattern), n)
        }
        for (x, y) in zip(a.optimizer.momentumBuffers, b2.optimizer.momentumBuffers) {
            XCTAssertEqual(x!.scalars, y!.scalars)
        }
        XCTAssertEqual(a.log.suffix(4).map(\.loss), b2.log.map(\.loss))
    }

    /// A small CIFAR ResNet learns the generated 10-class shape set to > 90% validation accuracy.
    func testLearnsGeneratedShapes() throws {
        let dir = try makeScratchFolder("resnet")
        let train = SyntheticShapes.make(count: 4000, seed: 11), val = SyntheticShapes.make(count: 500, seed: 12)
        try CIFARDataset.write(pixels: train.pixels, labels: train.labels, to: dir.appendingPathComponent("train.bin"))
        try CIFARDataset.write(pixels: val.pixels, labels: val.labels, to: dir.appendingPathComponent("val.bin"))
        var cfg = TrainConfig()
        cfg.arch = "cifar_resnet8"
        cfg.data.path = dir.appendingPathComponent("train.bin").path
        cfg.data.valPath = dir.appendingPathComponent("val.bin").path
        cfg.train.batchSize = 64; cfg.train.iterations = 500; cfg.train.lr = 0.1
        cfg.train.milestones = [350, 450]; cfg.train.validateEvery = 0; cfg.train.checkpointEvery = 0
        var opts = RunOptions(); opts.quiet = true
        opts.log = dir.appendingPathComponent("log.jsonl")
        let t = try Trainer(config: cfg, options: opts)
        try t.run()
        let v = try XCTUnwrap(t.log.last { $0.valError != nil })
        XCTAssertLessThan(v.valError!, 0.10, "validation error \(v.valError!)")
        // The log and the curve are written.
        XCTAssertEqual(try TrainingCurve.readLog(opts.log!).filter { $0.loss != nil }.count, 500)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("log.png").path))
        if let keep = ProcessInfo.processInfo.environment["KEEP_TRAINING_CURVE"] {
            try? FileManager.default.copyItem(at: dir.appendingPathComponent("log.png"), to: URL(fileURLWithPath: keep))
        }
    }

    /// Bad input: clear errors for unknown architectures and config keys, corrupt data, wrong checkpoints.
    func testBadInputErrors() throws {
        let dir = try makeScratchFolder("resnet")
        let yaml = dir.appendingPathComponent("r.yaml")
        try "arch: cifar_resnet20\ntrain:\n  batchsize: 3\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(TrainConfig(), file: yaml)) { e in
            XCTAssertTrue("\(e)".contains("unknown key \"train.batchsize\""), "\(e)")
            XCTAssertTrue("\(e)".contains(yaml.path), "\(e)")
        }
        XCTAssertThrowsError(try Recipe.load(TrainConfig(), file: nil, overrides: ["train.lr=abc"])) { e in
            XCTAssertTrue("\(e)".contains("train.lr"), "\(e)")
        }
        XCTAssertThrowsError(try Recipe.load(TrainConfig(), file: nil, overrides: ["nope=1"])) { e in
            XCTAssertTrue("\(e)".contains("unknown key \"nope\""), "\(e)")
        }
        try "arch: [1\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe.load(TrainConfig(), file: yaml)) { e in
            XCTAssertTrue("\(e)".contains("invalid YAML"), "\(e)")
        }
        let ok = try Recipe.load(TrainConfig(), file: nil, overrides: ["train.lr=0.05", "data.scale_range=[256, 418]"])
        XCTAssertEqual(ok.train.lr, 0.05)
        XCTAssertEqual(ok.data.scaleRange, [256, 418])
        // Every shipped recipe parses.
        let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs")
        for f in try FileManager.default.contentsOfDirectory(atPath: configs.path)
        where f.hasPrefix("cifar10_") || f.hasPrefix("imagenet_") {
            let c = try Recipe.load(TrainConfig(), file: configs.appendingPathComponent(f))
            XCTAssertNoThrow(try ResNetConfig.named(c.arch), f)
            XCTAssertNoThrow(try c.validate(), f)
        }

        // Unknown architecture.
        var cfg = TrainConfig(); cfg.arch = "resnet77"
        let data = dir.appendingPathComponent("d.bin")
        let ds = SyntheticShapes.make(count: 20, seed: 1)
        try CIFARDataset.write(pixels: ds.pixels, labels: ds.labels, to: data)
        cfg.data.path = data.path; cfg.train.batchSize = 4
        XCTAssertThrowsError(try Trainer(config: cfg, options: RunOptions())) { e in
            XCTAssertTrue("\(e)".contains("unknown architecture \"resnet77\""), "\(e)")
        }
        // Truncated CIFAR file and bad labels.
        let bytes = try Data(contentsOf: data)
        try bytes.prefix(5000).write(to: data)
        cfg.arch = "cifar_resnet8"
        XCTAssertThrowsError(try Trainer(config: cfg, options: RunOptions())) { e in
            XCTAssertTrue("\(e)".contains("not a multiple of the 3073-byte"), "\(e)")
        }
        var bad = bytes; bad[3073] = 77
        try bad.write(to: data)
        XCTAssertThrowsError(try Trainer(config: cfg, options: RunOptions())) { e in
            XCTAssertTrue("\(e)".contains("record 1 has label 77"), "\(e)")
        }
        // A checkpoint of another architecture.
        try bytes.write(to: data)
        let other = dir.appendingPathComponent("r20.safetensors")
        try ResNet(try ResNetConfig.named("cifar_resnet20")).save(
            to: other, metadata: ResNet(try ResNetConfig.named("cifar_resnet20")).metadata)
        var opts = RunOptions(); opts.initWeights = other
        XCTAssertThrowsError(try Trainer(config: cfg, options: opts)) { e in
            XCTAssertTrue("\(e)".contains("does not match the model") && "\(e)".contains("unexpected"), "\(e)")
        }
        XCTAssertThrowsError(try ModelIO.load(other, arch: "resnet18")) { e in
            XCTAssertTrue("\(e)".contains("cifar_resnet20"), "\(e)")
        }
    }

    /// Images that fail to decode are skipped with a count, or stop the run, as configured.
    func testBadImagesInAFolder() throws {
        let dir = try makeScratchFolder("resnet")
        let ds = SyntheticShapes.make(count: 6, seed: 3)
        for c in ["a", "b"] {
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(c), withIntermediateDirectories: true)
        }
        for k in 0..<6 {
            var img = RGBImage(width: 32, height: 32)
            for p in 0..<1024 {
                for ch in 0..<3 { img.pixels[p * 3 + ch] = ds.pixels[k * 3072 + ch * 1024 + p] }
            }
            let folder = dir.appendingPathComponent(k % 2 == 0 ? "a" : "b")
            try ImageIO.writePNG(img, to: folder.appendingPathComponent("\(k).png"))
        }
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("a/broken.jpg"))
        var src = ImageFolderSource(try ImageFolderDataset(root: dir))
        src.crop = 24; src.testResize = 32; src.scaleRange = 32...40
        XCTAssertEqual(src.count, 7)
        let (x, y, skipped) = try src.batch(Array(0..<7), augment: true, seeds: (0..<7).map { UInt64($0) })
        XCTAssertEqual(x.shape, [6, 3, 24, 24])
        XCTAssertEqual(y.count, 6)
        XCTAssertEqual(skipped.count, 1)
        XCTAssertTrue(skipped[0].contains("broken.jpg"), skipped[0])
        src.badImages = .stop
        XCTAssertThrowsError(try src.batch(Array(0..<7))) { e in XCTAssertTrue("\(e)".contains("broken.jpg")) }
    }
}
