import Foundation
import Detection
import Engine
import NN
import Imaging
import Evaluation
import Support
import WeightImport
import FileSupport

/// Options of a fine-tuning run that are not part of the recipe.
public struct FinetuneOptions {
    public var backbone: URL? = nil
    public var outDir: URL
    public var resume: URL? = nil
    /// Stop after this iteration (tests of kill-and-resume); nil = the whole recipe.
    public var stopAfter: Int? = nil
    public var quiet = false
    /// The processes of the run (an MPI job, or this process alone).
    public var communicator: Communicator = SingleProcess()
    public init(outDir: URL) { self.outDir = outDir }
}

/// One line of the fine-tuning log (JSON lines).
public struct FinetuneLogEntry: Codable, Equatable {
    public var iteration: Int
    public var lr: Float?
    public var loss: Float?
    public var rpnCls: Float?, rpnBox: Float?, roiCls: Float?, roiBox: Float?
    public var mAP: Float?
    enum CodingKeys: String, CodingKey {
        case iteration, lr, loss, mAP = "map"
        case rpnCls = "rpn_cls", rpnBox = "rpn_box", roiCls = "roi_cls", roiBox = "roi_box"
    }
}

/// End-to-end (approximate joint) fine-tuning of the detector: `ims_per_batch` images per SGD step, grouped
/// by aspect ratio, in forward passes of `images_per_forward` padded images with gradient accumulation
/// across passes. Everything random derives from (seed, iteration), and a
/// checkpoint holds weights, momentum and schedule, so a resumed run equals an uninterrupted one.
///
/// Over several ranks (an MPI job) each SGD step's batch is the same as in one process; rank r takes its
/// contiguous block of the batch's images (with each image's own random choices, which derive from the global
/// image index), gradients are summed over the ranks, and only rank 0 writes checkpoints, logs and curves.
/// The run's result does not depend on the number of ranks when `images_per_forward` divides every rank's share
/// (1 always does), up to the order of floating-point sums.
public final class DetectorTrainer {
    public let config: FinetuneConfig
    public let options: FinetuneOptions
    public let model: FasterRCNN
    public let data: DetectionDataset
    public let validation: DetectionDataset?
    public let optimizer: SGD
    public private(set) var schedule: LRSchedule
    public private(set) var iteration = 0
    public private(set) var log: [FinetuneLogEntry] = []
    public private(set) var clippedBoxes = 0
    public let parallel: DataParallel
    private var communicator: Communicator { options.communicator }
    public var checkpointURL: URL { options.outDir.appendingPathComponent("checkpoint.safetensors") }
    public var finalURL: URL { options.outDir.appendingPathComponent("model_final.safetensors") }
    public var logURL: URL { options.outDir.appendingPathComponent("log.jsonl") }

    public init(config: FinetuneConfig, options: FinetuneOptions) throws {
        try config.validate()
        self.config = config
        self.options = options
        try DataParallel.prepareRun(
            threads: config.threads, batch: config.solver.imsPerBatch, key: "solver.ims_per_batch",
            option: "--set solver.ims_per_batch=N", ranks: options.communicator.size)
        let policy = config.data.invalidBoxes
        let classes = config.data.classes.isEmpty ? nil : config.data.classes
        switch config.data.format {
        case .voc:
            let devkit = URL(fileURLWithPath: config.data.path)
            var train = try DetectionDataset.voc(
                devkit: devkit, split: config.data.split, classNames: classes, invalidBoxes: policy, forTraining: true)
            for extra in config.data.extraTrain {
                guard let colon = extra.lastIndex(of: ":") else {
                    throw DetectorError("data.extra_train entry \"\(extra)\" must be DEVKIT:SPLIT")
                }
                let more = try DetectionDataset.voc(
                    devkit: URL(fileURLWithPath: String(extra[..<colon])),
                    split: String(extra[extra.index(after: colon)...]),
                    classNames: train.classNames, invalidBoxes: policy, forTraining: true)
                train.samples += more.samples
                train.warnings += more.warnings
            }
            data = train
            validation =
                config.data.valSplit.isEmpty
                ? nil
                : try DetectionDataset.voc(
                    devkit: URL(fileURLWithPath: config.data.valPath.isEmpty ? config.data.path : config.data.valPath),
                    split: config.data.valSplit, classNames: data.classNames, invalidBoxes: .drop, forTraining: false)
        case .coco:
            data = try DetectionDataset.coco(
                annotations: URL(fileURLWithPath: config.data.path), images: URL(fileURLWithPath: config.data.images),
                invalidBoxes: policy)
            validation = nil
        }
        guard !data.samples.isEmpty else {
            throw DetectorError("\(config.data.path): the \(config.data.split) split has no images")
        }
        for s in data.samples.prefix(200) where !FileManager.default.fileExists(atPath: s.image.path) {
            throw DetectorError("\(s.image.path): image file not found (listed in \(config.data.path))")
        }
        var dc = config.detector
        dc.classNames = data.classNames
        if let ids = data.categoryIds { dc.categoryIds = ids }
        model = try FasterRCNN(dc, seed: config.solver.seed)
        if let b = options.backbone { try model.loadBackbone(try CheckpointImport.open(b, arch: nil)) }
        optimizer = SGD(
            parameters: model.trainableParameters(), lr: config.solver.lr, momentum: config.solver.momentum,
            weightDecay: config.solver.weightDecay)
        let s = config.solver
        schedule = LRSchedule(
            baseLR: s.lr, milestones: s.milestones, gamma: s.gamma, warmupIterations: s.warmupIterations,
            warmupFactor: s.warmupFactor)
        if options.communicator.isRoot {
            try FileManager.default.createDirectory(at: options.outDir, withIntermediateDirectories: true)
        }
        parallel = DataParallel(model, optimizer: optimizer, communicator: options.communicator)
        if let r = options.resume { try restore(r) }
        try parallel.start(configuration: Recipe.json(config) + " iteration \(iteration)")
    }

    public func checkpoint(to url: URL) throws {
        var meta = model.metadata
        meta["iteration"] = String(iteration)
        meta["schedule"] = String(data: try LRSchedule.encoder.encode(schedule), encoding: .utf8)!
        meta["finetune_config"] = Recipe.json(config)
        try TrainingCheckpoint.write(model, optimizer: optimizer, metadata: meta, to: url)
    }

    func restore(_ url: URL) throws {
        let (file, it) = try TrainingCheckpoint.restore(model, optimizer: optimizer, from: url, kind: "fine-tuning")
        if let s = file.metadata["schedule"], let d = s.data(using: .utf8) {
            schedule = try JSONDecoder.forSchedules.decode(LRSchedule.self, from: d)
        }
        iteration = it
        // Keep the log of the iterations done so far.
        if let text = try? String(contentsOf: logURL, encoding: .utf8) {
            let dec = JSONDecoder()
            log = text.split(separator: "\n").compactMap { try? dec.decode(FinetuneLogEntry.self, from: Data($0.utf8)) }
                .filter { $0.iteration <= it }
            if communicator.isRoot { try rewriteLog() }
        }
    }

    /// The image order: a seeded permutation per epoch.
    public func sampleIndex(_ k: Int) -> Int {
        let n = data.samples.count
        var r = SeededRNG(seed: derivedSeed(config.solver.seed, UInt64(k / n)))
        return r.permutation(n)[k % n]
    }

    private lazy var landscape: [Bool] = data.landscapeFlags()
    /// Full batches of each orientation, plus the batches the two remainders make together.
    private lazy var groupedBatchesPerEpoch: Int = {
        let n = data.samples.count, b = config.solver.imsPerBatch, wide = landscape.filter { $0 }.count
        return wide / b + (n - wide) / b + (wide % b + (n - wide) % b + b - 1) / b
    }()
    private var epochBatches: (epoch: Int, batches: [[Int]])? = nil

    /// The batches of one epoch under aspect-ratio grouping: the epoch's permutation split by orientation
    /// (order kept), each side cut into batches of `ims_per_batch`, the two remainders together make the
    /// last (possibly mixed, possibly short) batches, and the batch order is shuffled. A pure function of
    /// (seed, epoch), so resumed runs see the same batches.
    public func groupedBatches(epoch: Int) -> [[Int]] {
        let n = data.samples.count, b = config.solver.imsPerBatch
        var r = SeededRNG(seed: derivedSeed(config.solver.seed, UInt64(epoch)))
        let perm = r.permutation(n)
        let wide = perm.filter { landscape[$0] }, tall = perm.filter { !landscape[$0] }
        func chunks(_ a: [Int]) -> [[Int]] {
            stride(from: 0, to: a.count, by: b).map { Array(a[$0..<min($0 + b, a.count)]) }
        }
        let wideFull = wide.count / b * b, tallFull = tall.count / b * b
        let batches =
            chunks(Array(wide.prefix(wideFull))) + chunks(Array(tall.prefix(tallFull)))
            + chunks(Array(wide.dropFirst(wideFull)) + Array(tall.dropFirst(tallFull)))
        var o = SeededRNG(seed: derivedSeed(config.solver.seed, 1 << 40, UInt64(epoch)))
        return o.permutation(batches.count).map { batches[$0] }
    }

    /// The sample indices of iteration i (0-based).
    public func batchIndices(_ i: Int) -> [Int] {
        let b = config.solver.imsPerBatch
        guard b > 1, config.solver.aspectRatioGrouping else { return (0..<b).map { sampleIndex(i * b + $0) } }
        let epoch = i / groupedBatchesPerEpoch
        if epochBatches?.epoch != epoch { epochBatches = (epoch, groupedBatches(epoch: epoch)) }
        return epochBatches!.batches[i % groupedBatchesPerEpoch]
    }

    public func run() throws {
        let s = config.solver, last = min(s.iterations, options.stopAfter ?? s.iterations)
        let progress = Progress(
            total: s.iterations, label: "finetune", unit: "img", unitsPerStep: Double(s.imsPerBatch),
            startStep: iteration, enabled: !options.quiet && communicator.isRoot)
        model.train()
        if iteration == 0 { log = []; if communicator.isRoot { try? FileManager.default.removeItem(at: logURL) } }
        for w in data.warnings { progress.note("warning: \(w)") }
        while iteration < last {
            let i = iteration
            let lr = schedule.lr(at: i)
            optimizer.lr = lr
            optimizer.zeroGrad()
            var parts = LossBreakdown()
            let batch = batchIndices(i)
            // This rank's images of the batch (all of it in one process).
            let mine = communicator.block(of: batch.count)
            let perForward = max(1, s.imagesPerForward == 0 ? mine.count : min(s.imagesPerForward, mine.count))
            for start in stride(from: mine.lowerBound, to: mine.upperBound, by: perForward) {
                let slots = Array(start..<min(start + perForward, mine.upperBound))
                var inputs: [Tensor] = [], targets: [TrainingTarget] = [], sizes: [(height: Int, width: Int)] = [],
                    rngs: [SeededRNG] = []
                for j in slots {
                    let sample = data.samples[batch[j]]
                    var rng = SeededRNG(seed: derivedSeed(s.seed, 1 << 41, UInt64(i * s.imsPerBatch + j)))
                    let image = try ImageIO.read(sample.image)
                    let prepared = try TrainingAugment.prepare(
                        sample, image: image, config: model.config, scales: s.scales, flip: s.flip,
                        dropOutside: config.data.invalidBoxes == .drop, rng: &rng)
                    clippedBoxes += prepared.clippedBoxes
                    inputs.append(prepared.input.tensor); targets.append(prepared.target)
                    sizes.append((prepared.input.inputSize.height, prepared.input.inputSize.width)); rngs.append(rng)
                }
                let (loss, p) = model.losses(Preprocess.batch(inputs), targets: targets, imageSizes: sizes, rngs: &rngs)
                guard p.total.isFinite else {
                    let names = slots.map { data.samples[batch[$0]].image.path }.joined(separator: ", ")
                    let last =
                        FileManager.default.fileExists(atPath: checkpointURL.path)
                        ? "The last good checkpoint is \(checkpointURL.path) (--resume continues from it). "
                        : "No checkpoint was written yet. "
                    throw DetectorError(
                        "iteration \(i + 1), image\(slots.count > 1 ? "s" : "") \(names): the loss is not finite "
                            + "(rpn_cls \(p.rpnCls), rpn_box \(p.rpnBox), roi_cls \(p.roiCls), roi_box \(p.roiBox)); "
                            + "stopping. \(last)Try a lower solver.lr or longer warm-up.")
                }
                let w = Float(slots.count) / Float(batch.count)
                scale(loss, w).backward()
                parts.rpnCls += p.rpnCls * w; parts.rpnBox += p.rpnBox * w
                parts.roiCls += p.roiCls * w; parts.roiBox += p.roiBox * w
            }
            if parallel.isDistributed {
                parallel.allReduceGradients()
                let local = [parts.rpnCls, parts.rpnBox, parts.roiCls, parts.roiBox].map(Double.init)
                let sums = communicator.sum(local).map(Float.init)
                (parts.rpnCls, parts.rpnBox, parts.roiCls, parts.roiBox) = (sums[0], sums[1], sums[2], sums[3])
            }
            optimizer.step()
            iteration += 1
            try append(
                FinetuneLogEntry(
                    iteration: iteration, lr: lr, loss: parts.total, rpnCls: parts.rpnCls, rpnBox: parts.rpnBox,
                    roiCls: parts.roiCls, roiBox: parts.roiBox))
            progress.update(
                iteration,
                String(
                    format: "loss %.3f (rpn %.3f/%.3f, roi %.3f/%.3f) lr %.2g", parts.total, parts.rpnCls,
                    parts.rpnBox, parts.roiCls, parts.roiBox, lr))
            let end = iteration == last
            if (s.validateEvery > 0 && iteration % s.validateEvery == 0) || (iteration == s.iterations),
                validation != nil
            {
                let m = try validate()
                try append(FinetuneLogEntry(iteration: iteration, mAP: m))
                progress.note(String(format: "iteration %d: validation mAP@0.5 (VOC area) %.4f", iteration, m))
                model.train()
            }
            if communicator.isRoot, (s.checkpointEvery > 0 && iteration % s.checkpointEvery == 0) || end {
                try checkpoint(to: checkpointURL)
            }
        }
        clippedBoxes = Int(communicator.sum(Double(clippedBoxes)))
        if iteration == s.iterations && communicator.isRoot {
            try model.save(to: finalURL, metadata: model.metadata)
            try? writeCurve()
        }
    }

    /// VOC area mAP@0.5 of the current weights on the validation split (at most `val_limit` images); over
    /// several ranks each detects its block of the images and rank 0 (which alone gets the result) evaluates.
    public func validate() throws -> Float {
        guard let val = validation, let gt = val.vocGroundTruth else { return -1 }
        model.eval()
        let runner = DetectorRunner(model: model)
        let limit = config.data.valLimit > 0 ? min(config.data.valLimit, val.samples.count) : val.samples.count
        let found = try communicator.gatherBlocks(limit) { k in
            try runner.detect(try ImageIO.read(val.samples[k].image)).map(DetectedObject.BitExact.init)
        }
        guard communicator.isRoot else { return -1 }
        var dets: [Evaluation.Detection] = []
        for (idx, objects) in found.enumerated() {
            for o in objects.map(\.object) {
                let c = o.corners  // widths in Float, as the detector computes boxes
                dets.append(
                    Evaluation.Detection(
                        imageIndex: idx, categoryIndex: o.label - 1,
                        box: BoxXYWH(
                            x: Double(c[0]), y: Double(c[1]), width: Double(c[2] - c[0]), height: Double(c[3] - c[1])),
                        score: Double(o.score)))
            }
        }
        let sub = VOCGroundTruth(
            imageIDs: Array(gt.imageIDs.prefix(limit)), classNames: gt.classNames,
            objects: gt.objects.filter { $0.imageIndex < limit }, warnings: [], name: gt.name)
        return Float(evaluateVOC(sub, dets, iouThreshold: 0.5, metric: .voc).mAP)
    }

    private func append(_ e: FinetuneLogEntry) throws {
        log.append(e)
        guard communicator.isRoot else { return }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        var line = try enc.encode(e); line.append(0x0A)
        if let h = try? FileHandle(forWritingTo: logURL) {
            defer { try? h.close() }; try h.seekToEnd(); try h.write(contentsOf: line)
        } else {
            try line.write(to: logURL)
        }
    }

    private func rewriteLog() throws {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        var d = Data()
        for e in log { d.append(try enc.encode(e)); d.append(0x0A) }
        try AtomicFile.write(d, to: logURL)
    }

    /// The loss curve (total and the four parts, smoothed) and validation mAP next to the log.
    public func writeCurve() throws {
        let losses = log.filter { $0.loss != nil }
        func smooth(_ v: [Float]) -> [Double] {
            var out: [Double] = [], acc: [Float] = []
            for x in v {
                acc.append(x); if acc.count > 20 { acc.removeFirst() };
                out.append(Double(acc.reduce(0, +) / Float(acc.count)))
            }
            return out
        }
        let xs = losses.map { Double($0.iteration) }
        var series = [LineSeries(name: "total", xs: xs, ys: smooth(losses.map { $0.loss! }), lineWidth: 3)]
        for (name, key) in [
            ("rpn cls", \FinetuneLogEntry.rpnCls), ("rpn box", \.rpnBox), ("roi cls", \.roiCls), ("roi box", \.roiBox)
        ] {
            series.append(
                LineSeries(name: name, xs: xs, ys: smooth(losses.map { $0[keyPath: key] ?? 0 }), lineWidth: 1))
        }
        let chart = LineChart(
            title: "fine-tuning loss", xLabel: "iteration", yLabel: "loss", series: series, logY: false)
        try ImageIO.writePNG(
            chart.render(width: 900, height: 600), to: options.outDir.appendingPathComponent("loss.png"))
        let maps = log.filter { $0.mAP != nil }
        if !maps.isEmpty {
            let c = LineChart(
                title: "validation mAP@0.5", xLabel: "iteration", yLabel: "mAP",
                series: [
                    LineSeries(
                        name: "mAP", xs: maps.map { Double($0.iteration) }, ys: maps.map { Double($0.mAP!) },
                        lineWidth: 3)
                ],
                yRange: 0...1)
            try ImageIO.writePNG(
                c.render(width: 900, height: 500), to: options.outDir.appendingPathComponent("map.png"))
        }
    }
}
