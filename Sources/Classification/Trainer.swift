import Foundation
import Engine
import NN
import ResNet
import Data
import Imaging
import Support

/// Options of a training run that are not part of the recipe.
public struct RunOptions {
    public var initWeights: URL? = nil
    public var save: URL? = nil
    public var log: URL? = nil
    public var resume: URL? = nil
    public var checkpointDir: URL? = nil
    /// Stop after this iteration (for tests of kill-and-resume); nil = run the whole recipe.
    public var stopAfter: Int? = nil
    public var quiet = false
    /// The processes of the run (an MPI job, or this process alone).
    public var communicator: Communicator = SingleProcess()
    public init() {}
}

/// One line of the JSON-lines log.
public struct LogEntry: Codable, Equatable {
    public var iteration: Int
    public var loss: Float?
    public var lr: Float?
    public var trainError: Float?
    public var valError: Float?
    public var valTop5Error: Float?
    enum CodingKeys: String, CodingKey {
        case iteration, loss, lr
        case trainError = "train_error", valError = "val_error", valTop5Error = "val_top5_error"
    }
}

/// Classification training: SGD on mean cross-entropy with BN in train mode, weight decay on every
/// trainable parameter, checkpoints with everything needed for an exact resume, JSON-lines log, a PNG
/// training curve and a progress bar.
///
/// Over several ranks (an MPI job) each rank trains on its contiguous block of every batch (the same images,
/// with the same augmentation, as in one process), gradients are summed over the ranks and only rank 0
/// writes checkpoints, logs and curves. Batch norm normalises per rank, or over the global batch with
/// `train.sync_bn`; evaluation uses rank 0's running statistics.
public final class Trainer {
    public let config: TrainConfig
    public let options: RunOptions
    public let model: ResNet
    public let optimizer: SGD
    public private(set) var schedule: LRSchedule
    public let loader: TrainLoader
    public let validation: BatchSource?
    public let classNames: [String]
    /// The iteration completed last (0 before training).
    public private(set) var iteration = 0
    private var recentErrors: [Float] = []
    public private(set) var log: [LogEntry] = []
    public private(set) var skippedImages = 0
    public let parallel: DataParallel
    private var communicator: Communicator { options.communicator }

    public init(config: TrainConfig, options: RunOptions) throws {
        try config.validate()
        self.config = config
        self.options = options
        let ranks = options.communicator.size
        try DataParallel.prepareRun(
            threads: config.threads, batch: config.train.batchSize, key: "train.batch_size",
            option: "--batch N", ranks: ranks)
        let norm = Normalization(mean: config.data.mean, std: config.data.std)
        // Data
        let train: BatchSource, val: BatchSource?, names: [String]
        switch config.data.format {
        case .shapes:
            // The generated 10-class shape set (SyntheticShapes): data.path is unused.
            let n = max(config.data.generatedCount, config.train.batchSize)
            train = CIFARSource(SyntheticShapes.make(count: n, seed: config.train.seed &+ 1000), normalization: norm)
            val = CIFARSource(
                SyntheticShapes.make(count: max(10, n / 8), seed: config.train.seed &+ 2000), normalization: norm)
            names = SyntheticShapes.classNames
        case .cifar10:
            let url = URL(fileURLWithPath: config.data.path)
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
            guard exists else { throw DataError(file: url.path, "training data not found") }
            var trainSet =
                isDir.boolValue ? try CIFARDataset.standard(folder: url, train: true) : try CIFARDataset(files: [url])
            var valSet: CIFARDataset? = nil
            if config.data.valSplit {
                guard trainSet.count > 5000 else {
                    throw DataError(
                        file: url.path, "val_split needs more than 5000 training records, found \(trainSet.count)")
                }
                valSet = trainSet.subset((trainSet.count - 5000)..<trainSet.count)
                trainSet = trainSet.subset(0..<(trainSet.count - 5000))
            } else if !config.data.valPath.isEmpty {
                valSet = try CIFARDataset(files: [URL(fileURLWithPath: config.data.valPath)])
            } else if isDir.boolValue {
                valSet = try CIFARDataset.standard(folder: url, train: false)
            }
            train = CIFARSource(trainSet, normalization: norm)
            val = valSet.map { CIFARSource($0, normalization: norm) }
            names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        case .folder:
            func source(_ path: String, classes: [String]?) throws -> ImageFolderSource {
                var s = ImageFolderSource(try ImageFolderDataset(root: URL(fileURLWithPath: path), classes: classes))
                s.normalization = norm
                s.scaleRange = config.data.scaleRange[0]...config.data.scaleRange[1]
                s.crop = config.data.crop
                s.testResize = config.data.testResize
                s.badImages = config.data.badImages
                return s
            }
            let t = try source(config.data.path, classes: nil)
            train = t
            val = config.data.valPath.isEmpty ? nil : try source(config.data.valPath, classes: t.data.classes)
            names = t.data.classes
        }
        var cfg = try ResNetConfig.named(config.arch)
        cfg.numClasses = config.numClasses > 0 ? config.numClasses : train.numClasses
        if !config.widths.isEmpty {
            guard config.widths.count == cfg.widths.count else {
                throw RecipeValueError(
                    message: "widths needs \(cfg.widths.count) values for \(cfg.name), got \(config.widths)")
            }
            cfg.widths = config.widths
        }
        if config.stemWidth > 0 { cfg.stemWidth = config.stemWidth }
        self.classNames = cfg.numClasses == names.count ? names : (0..<cfg.numClasses).map { "class\($0)" }
        model = ResNet(cfg, seed: config.train.seed)
        if let initURL = options.initWeights {
            let file = try SafeTensorsFile(contentsOf: initURL)
            do { try model.load(file) } catch let e as CheckpointError {
                throw CheckpointError(
                    file: e.file, e.message + " (--init must hold a \(cfg.name) with \(cfg.numClasses) classes)")
            }
        }
        optimizer = SGD(
            parameters: model.trainableParameters(), lr: config.train.lr, momentum: config.train.momentum,
            weightDecay: config.train.weightDecay, nesterov: config.train.nesterov)
        let t = config.train
        schedule = LRSchedule(
            baseLR: t.lr, milestones: t.milestones, gamma: t.gamma, warmupIterations: t.warmupIterations,
            warmupFactor: t.warmupFactor,
            lowLR: t.lowLr > 0 ? .init(lr: t.lowLr, untilTrainErrorBelow: t.lowLrUntilTrainError) : nil,
            plateau: t.plateauPatience > 0 ? .init(factor: t.plateauFactor, patience: t.plateauPatience) : nil)
        loader = try TrainLoader(
            source: train, batchSize: t.batchSize, shuffle: t.shuffle, augment: t.augment, seed: t.seed)
        loader.shard = (options.communicator.rank, ranks)
        validation = val
        parallel = DataParallel(model, optimizer: optimizer, communicator: options.communicator)
        if let r = options.resume { try restore(from: r) }
        try parallel.start(configuration: Recipe.json(config) + " iteration \(iteration)")
        // With one process too: the statistics are then computed as N processes compute them (per-channel sums in
        // Double), so that a run over N processes equals the one-process run to rounding, not only to the order
        // of the float sums (which a ReLU threshold can amplify over a few steps).
        SyncBatchNorm.communicator = t.syncBn ? options.communicator : nil
    }

    // MARK: - Checkpoints

    /// Model weights + optimizer momentum + schedule + position: everything an exact resume needs.
    public func checkpoint(to url: URL) throws {
        var meta = model.metadata
        meta["classes"] = (try? String(data: JSONEncoder().encode(classNames), encoding: .utf8)) ?? "[]"
        meta["iteration"] = String(iteration)
        meta["schedule"] = String(data: try LRSchedule.encoder.encode(schedule), encoding: .utf8)!
        meta["recent_errors"] = recentErrors.map { String($0.bitPattern) }.joined(separator: ",")
        meta["train_config"] = Recipe.json(config)
        try TrainingCheckpoint.write(model, optimizer: optimizer, metadata: meta, to: url)
    }

    func restore(from url: URL) throws {
        let (file, it) = try TrainingCheckpoint.restore(
            model, optimizer: optimizer, from: url, kind: "training",
            hint: "; use --init to start from weights")
        if let s = file.metadata["schedule"], let d = s.data(using: .utf8) {
            schedule = try JSONDecoder.forSchedules.decode(LRSchedule.self, from: d)
        }
        recentErrors = (file.metadata["recent_errors"] ?? "").split(separator: ",").compactMap {
            UInt32($0).map(Float.init(bitPattern:))
        }
        iteration = it
    }

    // MARK: - Training

    /// Top-1 and top-5 error over a batch source (single centre crop / image as is), eval mode. Over several
    /// ranks each evaluates its block of the images with rank 0's weights and running statistics.
    public func evaluate(_ source: BatchSource) throws -> (top1: Float, top5: Float) {
        parallel.broadcastBuffers()
        model.eval()
        defer { model.train() }
        var wrong1 = 0, wrong5 = 0, total = 0
        let bs = max(1, min(config.train.batchSize, 256))
        let mine = communicator.block(of: source.count)
        var start = mine.lowerBound
        while start < mine.upperBound {
            let idx = Array(start..<min(mine.upperBound, start + bs))
            start += bs
            let (x, y, _) = try source.batch(idx)
            let logits = GradMode.withoutGrad { model(x) }
            let (e1, e5) = Metrics.errors(logits: logits, labels: y, k: 5)
            wrong1 += e1; wrong5 += e5; total += y.count
        }
        if communicator.isDistributed {
            let s = communicator.sum([wrong1, wrong5, total].map(Double.init)).map { Int($0) }
            (wrong1, wrong5, total) = (s[0], s[1], s[2])
        }
        return (Float(wrong1) / Float(max(total, 1)), Float(wrong5) / Float(max(total, 1)))
    }

    /// Runs until the recipe's last iteration (or `options.stopAfter`).
    public func run() throws {
        let t = config.train
        let last = min(t.iterations, options.stopAfter ?? t.iterations)
        model.train()
        let progress = Progress(
            total: t.iterations, label: "train", unit: "img", unitsPerStep: Double(t.batchSize),
            startStep: iteration, enabled: !options.quiet && communicator.isRoot)
        if let logURL = options.log, iteration == 0, communicator.isRoot {
            try? FileManager.default.removeItem(at: logURL)
        }
        while iteration < last {
            let i = iteration  // 0-based index of this iteration's batch
            let (x, y, skipped) = try loader.batch(i)
            if !skipped.isEmpty {
                skippedImages += skipped.count
                for s in skipped { progress.note("warning: skipped an image: \(s)") }
            }
            // Images of the global batch, and ranks left without any (every image of their share failed).
            let (count, emptyRanks) =
                communicator.isDistributed
                ? {
                    let s = communicator.sum([Double(y.count), y.isEmpty ? 1 : 0]); return (Int(s[0]), Int(s[1]))
                }()
                : (y.count, y.isEmpty ? 1 : 0)
            guard count > 0, emptyRanks == 0 || SyncBatchNorm.communicator == nil else {
                if communicator.isDistributed && count > 0 {
                    progress.note("warning: iteration \(i + 1) skipped: a process has no readable image of its share")
                }
                iteration += 1; continue
            }
            let lr = schedule.lr(at: i)
            optimizer.lr = lr
            optimizer.zeroGrad()
            var lossValue: Float = 0, e1 = 0
            if !y.isEmpty {
                let logits = model(x)
                let loss = crossEntropy(logits, targets: y)
                lossValue = loss.item()
                guard lossValue.isFinite else {
                    throw TrainingError(
                        "iteration \(i + 1): the loss is \(lossValue); stopping (the last good "
                            + "checkpoint is kept). Try a lower learning rate.")
                }
                e1 = Metrics.errors(logits: logits, labels: y, k: 5).0
                // The mean over the global batch: this rank's mean weighted by its share.
                (communicator.isDistributed ? scale(loss, Float(y.count) / Float(count)) : loss).backward()
            }
            if communicator.isDistributed {
                parallel.allReduceGradients()
                let s = communicator.sum([Double(lossValue) * Double(y.count), Double(e1)])
                lossValue = Float(s[0] / Double(count)); e1 = Int(s[1])
            }
            optimizer.step()
            iteration += 1
            let err = Float(e1) / Float(count)
            recentErrors.append(err)
            if recentErrors.count > max(1, t.errorWindow) {
                recentErrors.removeFirst(recentErrors.count - t.errorWindow)
            }
            let meanErr = recentErrors.reduce(0, +) / Float(recentErrors.count)
            schedule.observeTrainError(meanErr)
            try append(LogEntry(iteration: iteration, loss: lossValue, lr: lr, trainError: err))
            progress.update(iteration, String(format: "loss %.4f  err %.3f  lr %.3g", lossValue, meanErr, lr))
            let end = iteration == last
            if let val = validation,
                (t.validateEvery > 0 && iteration % t.validateEvery == 0) || (end && iteration == t.iterations)
            {
                let (v1, v5) = try evaluate(val)
                schedule.observeMetric(v1)
                try append(LogEntry(iteration: iteration, valError: v1, valTop5Error: v5))
                progress.note(
                    String(
                        format: "iteration %d: validation top-1 error %.2f%%, top-5 %.2f%%", iteration, 100 * v1,
                        100 * v5))
            }
            if let dir = options.checkpointDir, communicator.isRoot,
                (t.checkpointEvery > 0 && iteration % t.checkpointEvery == 0) || end
            {
                try checkpoint(to: dir.appendingPathComponent("checkpoint.safetensors"))
            }
        }
        skippedImages = Int(communicator.sum(Double(skippedImages)))
        guard communicator.isRoot else { return }
        if let save = options.save {
            var meta = model.metadata
            meta["classes"] = (try? String(data: JSONEncoder().encode(classNames), encoding: .utf8)) ?? "[]"
            meta["train_config"] = Recipe.json(config)
            try model.save(to: save, metadata: meta)
        }
        if let logURL = options.log { try? writeCurve(logURL) }
    }

    private func append(_ e: LogEntry) throws {
        log.append(e)
        guard let url = options.log, communicator.isRoot else { return }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        var line = try enc.encode(e); line.append(0x0A)
        if let h = try? FileHandle(forWritingTo: url) {
            defer { try? h.close() }
            try h.seekToEnd(); try h.write(contentsOf: line)
        } else {
            try line.write(to: url)
        }
    }

    /// The training curve next to the log: thin line training error (smoothed), bold line validation error.
    func writeCurve(_ logURL: URL) throws {
        let entries = try TrainingCurve.readLog(logURL)
        let png = logURL.deletingPathExtension().appendingPathExtension("png")
        try ImageIO.writePNG(TrainingCurve.render(entries, title: "\(config.arch): error (%)"), to: png)
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

/// Classification metrics.
public enum Metrics {
    /// Number of top-1 and top-k mistakes in a batch of logits (N, K).
    public static func errors(logits: Tensor, labels: [Int], k: Int) -> (Int, Int) {
        let n = logits.shape[0], c = logits.shape[1]
        var e1 = 0, ek = 0
        for i in 0..<n {
            let row = logits.data + i * c
            let target = row[labels[i]]
            var higher = 0
            for j in 0..<c where row[j] > target || (row[j] == target && j < labels[i]) { higher += 1 }
            if higher >= 1 { e1 += 1 }
            if higher >= min(k, c) { ek += 1 }
        }
        return (e1, ek)
    }
}
