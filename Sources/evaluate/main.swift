import ArgumentParser
import Evaluation
import Foundation
import FileSupport
import Detection
import DetectionReport
import Detector
import Engine
import Imaging
import Support
import CommandOptions
import Cluster

/// Whether this process prints and writes (process 0 of an MPI job, or the only one).
nonisolated(unsafe) var isRootProcess = true

extension Metric: ExpressibleByArgument {}

/// `evaluate`: box-level evaluation of detections (COCO results JSON) against Pascal VOC or COCO ground truth.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score detections against Pascal VOC or COCO ground truth (VOC AP / the 12 COCO numbers).",
        discussion: """
            Detections are a COCO results file: [{"image_id", "category_id" or "category_name", \
            "bbox": [x, y, w, h], "score"}, ...]. Against VOC ground truth, image_id is the image's file stem \
            (a string, e.g. "000001"), category_id the 1-based index in the class list, and the box means the \
            corners (x, y, x+w, y+h) in the annotation's pixels (IoU with VOC's +1 convention).

            Metrics: voc07 (11-point AP, the default for VOC2007 and earlier), voc (area AP, VOC2010+), \
            coco (pycocotools' COCOeval: AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l; the default for COCO files).

            Examples:
              evaluate --gt VOCdevkit/VOC2007 --split test --dets results.json
              evaluate --gt VOCdevkit/VOC2007 --dets results.json --metric coco
              evaluate --gt VOCdevkit/VOC2012 --dets results.json --iou 0.5 --iou 0.7
              evaluate --gt instances_val2017.json --dets results.json --json ap.json
              evaluate --gt instances_val2017.json --dets results.json --plots pr/
              evaluate --gt instances_val2017.json --batch runs/ --markdown table.md
              evaluate --gt VOCdevkit/VOC2007 --split test --weights runs/voc07/model_final.safetensors
              evaluate --gt instances_val2017.json --images val2017 --weights model.safetensors --save-dets dets.json
            """)

    @Option(
        help: ArgumentHelp(
            "Ground truth: a VOCdevkit/VOC20xx folder or a COCO instances .json file.", valueName: "path"))
    var gt: String

    @Option(help: ArgumentHelp("VOC image set (ImageSets/Main/<split>.txt).", valueName: "name"))
    var split = "test"

    @Option(
        help: ArgumentHelp(
            "VOC class list, one name per line (default: the 20 VOC classes when all names found are among them, else "
            + "the sorted names found).",
            valueName: "file"))
    var classes: String?

    @Option(help: ArgumentHelp("Detections to score (COCO results JSON).", valueName: "file"))
    var dets: String?

    @Option(
        help: ArgumentHelp(
            "Run this detector checkpoint over the ground truth's images first and score its output; repeat for an "
            + "ensemble.",
            valueName: "checkpoint"))
    var weights: [String] = []

    @OptionGroup(title: "With --weights: test-time augmentation and ensembles") var testTime: TestTimeOptions

    @Option(
        help: ArgumentHelp(
            "With --weights and COCO ground truth: the image folder (file_name is relative to it).", valueName: "folder"
        ))
    var images: String?

    @Option(help: ArgumentHelp("With --weights: also keep the detections as COCO results JSON.", valueName: "file"))
    var saveDets: String?

    @Option(
        help: ArgumentHelp(
            "Score many results files against the one ground truth: a folder of .json files or a text file listing "
            + "them. Prints a comparison table sorted by AP / mAP.",
            valueName: "folder-or-list"))
    var batch: String?

    @Option(
        help: ArgumentHelp(
            "Default: voc07 for VOC2007 and earlier, voc for other VOC folders, coco for COCO files.",
            valueName: "metric"))
    var metric: Metric?

    @Option(
        name: .customLong("iou"),
        help: ArgumentHelp(
            "VOC IoU threshold; repeat for more (default 0.5; the first is the headline).", valueName: "t"))
    var iouThresholds: [Double] = []

    @Flag(help: "Leave out detections of images or categories the ground truth does not have, instead of stopping.")
    var dropUnknown = false

    @Option(
        help: ArgumentHelp("Write the numbers as JSON (with --batch: a list, one entry per file).", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write the numbers as CSV (with --batch: the comparison table).", valueName: "file"))
    var csv: String?

    @Option(help: ArgumentHelp("With --batch: write the comparison table as Markdown.", valueName: "file"))
    var markdown: String?

    @Option(
        help: ArgumentHelp(
            "Write precision-recall curves as PNGs (one per class and summary.png) into this folder.",
            valueName: "folder"))
    var plots: String?

    @Option(
        help: ArgumentHelp(
            "Also write the detections as Pascal VOC devkit result files (comp4_det_<split>_<class>.txt) into this "
            + "folder; voc_eval on them gives this command's VOC AP.",
            valueName: "folder"))
    var saveVocResults: String?

    @Flag(name: .shortAndLong, help: "Print only the results (no notes or progress on stderr).")
    var quiet = false

    @OptionGroup(title: "With --weights: the engine") var engine: EngineOptions

    func validate() throws {
        guard [dets != nil, batch != nil, !weights.isEmpty].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --dets FILE, --batch FOLDER-OR-LIST or --weights CHECKPOINT")
        }
        if weights.isEmpty && (images != nil || saveDets != nil) {
            throw ValidationError("--images and --save-dets go with --weights")
        }
        if weights.isEmpty && testTime.isUsed {
            throw ValidationError("--tta, --tta-scales and --box-voting go with --weights")
        }
        if batch == nil && markdown != nil { throw ValidationError("--markdown writes the --batch comparison table") }
        if batch != nil && plots != nil { throw ValidationError("--plots draws the curves of one --dets file") }
        if batch != nil && saveVocResults != nil {
            throw ValidationError("--save-voc-results writes the detections of one --dets file or --weights run")
        }
        for t in iouThresholds where !(t > 0 && t < 1) {
            throw ValidationError("--iou \(t): thresholds lie between 0 and 1")
        }
    }

    func run() throws {
        try reportingErrors {
            let world = try engine.start()
            isRootProcess = world.isRoot
            try body(world)
        }
    }

    func body(_ world: Communicator) throws {
        let clock = Date()
        let classNames = try classes.map { try VOCGroundTruth.loadClassList(URL(fileURLWithPath: $0)) }
        let groundTruth = try GroundTruth.load(path: gt, split: split, classNames: classNames)
        let metric = self.metric ?? groundTruth.defaultMetric
        if metric == .coco && !iouThresholds.isEmpty {
            throw ValidationError(
                "--iou applies to the VOC metrics; the COCO metric reports IoU 0.50:0.95, 0.50 and 0.75")
        }
        note("\(groundTruth.summary) (\(seconds(since: clock)))")
        groundTruth.warnings.forEach { note("warning: \($0)") }
        if let saveVocResults, world.isRoot {
            try VOCResultFiles.prepare(
                folder: URL(fileURLWithPath: saveVocResults), split: split,
                classNames: groundTruth.index.categories.map(\.name))
        }
        if let saveDets, world.isRoot {
            try OutputFolder.prepare(file: URL(fileURLWithPath: saveDets), what: "--save-dets file")
        }
        if !weights.isEmpty {
            // Every process detects its block of the images; process 0 evaluates them all.
            let checkpoints = weights.map { URL(fileURLWithPath: $0) }
            guard let file = try runDetector(checkpoints, groundTruth, world) else { return }
            try evaluateOne(file, groundTruth, metric)
        } else if !world.isRoot {
            return  // a detections file is evaluated by one process
        } else if let dets {
            try evaluateOne(URL(fileURLWithPath: dets), groundTruth, metric)
        } else if let batch {
            try evaluateMany(batch, groundTruth, metric)
        }
    }

    /// Runs the detector over every image of the ground truth and writes its detections as COCO results
    /// (image_id: the VOC file stem or the COCO id; classes by name) to `--save-dets` or a temporary file.
    /// Over several processes each detects a contiguous block of the images; process 0 gathers the results
    /// (in image order, as one process writes them) and returns the file, the others nil.
    func runDetector(_ checkpoints: [URL], _ groundTruth: GroundTruth, _ world: Communicator) throws -> URL? {
        let members = try checkpoints.map { try DetectorRunner(checkpoint: $0) }
        let runner = try testTime.ensemble(members, names: checkpoints.map(\.lastPathComponent))
        let single = members.count == 1 && runner.augmentation == nil
        var jobs: [(URL, Any)] = []
        switch groundTruth {
        case .voc(let v):
            let devkit = URL(fileURLWithPath: gt)
            jobs = v.imageIDs.map { (VOCGroundTruth.imageFile(devkit: devkit, id: $0), $0) }
        case .coco:
            guard let images else { throw ValidationError("--weights with COCO ground truth needs --images FOLDER") }
            let ds = try DetectionDataset.coco(
                annotations: URL(fileURLWithPath: gt), images: URL(fileURLWithPath: images), invalidBoxes: .drop)
            jobs = ds.samples.map { ($0.image, ResultImageIDs.id(forStem: $0.id).jsonValue) }
        }
        let clock = Date()
        let mine = world.block(of: jobs.count)
        let label = world.size > 1 ? "detect (process 0 of \(world.size))" : "detect"
        let progress = Progress(total: mine.count, label: label, unit: "img")
        progress.enabled = !quiet && world.isRoot
        let all = try world.gatherBlocks(jobs.count) { k -> [DetectedObject.BitExact] in
            defer { progress.update(k + 1 - mine.lowerBound) }
            let image = try ImageIO.read(jobs[k].0)
            return try (single ? members[0].detect(image) : runner.detect(image)).map(DetectedObject.BitExact.init)
        }
        guard world.isRoot else { return nil }
        var results: [[String: Any]] = []
        for (k, objects) in all.enumerated() {
            results += DetectionOutput.cocoResults(objects.map(\.object), imageID: jobs[k].1)
                .map { r in r.filter { $0.key != "category_id" } }
        }
        let out =
            saveDets.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("evaluate-\(getpid())-dets.json")
        try AtomicFile.write(
            try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys]), to: out, createFolder: true)
        note(
            "\(results.count) detections on \(jobs.count) images\(saveDets != nil ? " written to \(out.path)" : "")"
                + String(
                    format: " (%.3f s per image, %d pass%@ each)",
                    Date().timeIntervalSince(clock) / Double(max(jobs.count, 1)),
                    runner.passCount, runner.passCount == 1 ? "" : "es"))
        return out
    }

    /// One results file: table on stdout, optional JSON / CSV / plots.
    func evaluateOne(_ file: URL, _ groundTruth: GroundTruth, _ metric: Metric) throws {
        var clock = Date()
        let list = try DetectionsFile.load(file, index: groundTruth.index, unknown: dropUnknown ? .drop : .reject)
        note(
            "\(list.detections.count) detections from \(file.path) (\(seconds(since: clock)))"
                + (list.dropped > 0 ? "; left out \(list.dropped) of unknown images or categories" : ""))
        if list.aliased > 0 {
            note(
                "note: \(list.aliased) detections name their image by another name than the ground truth's id "
                    + "(a file stem, or a number for a stem of digits); each matched exactly one image")
        }
        if let saveVocResults {
            let index = groundTruth.index
            let entries = list.detections.map { d in
                VOCResultFiles.Entry(
                    image: index.images[Int(d.imageIndex)].plainText, classIndex: Int(d.categoryIndex),
                    score: d.score, box: BoxCorners(d.box))
            }
            let files = try VOCResultFiles.write(
                entries, classNames: index.categories.map(\.name), split: split,
                to: URL(fileURLWithPath: saveVocResults))
            note("wrote \(entries.count) detections to \(files.count) VOC result files in \(saveVocResults)")
        }
        clock = Date()
        let result = try evaluate(groundTruth, list.detections, metric: metric, vocIoUThresholds: iouThresholds)
        note("evaluated (\(seconds(since: clock)))")
        print(renderTable(result), terminator: "")
        if let json { try AtomicFile.write(renderJSON(result), to: URL(fileURLWithPath: json), createFolder: true) }
        if let csv { try AtomicFile.write(renderCSV(result), to: URL(fileURLWithPath: csv), createFolder: true) }
        if let plots {
            let files = try writePRPlots(result, to: URL(fileURLWithPath: plots))
            note("wrote \(files.count) plots to \(plots)")
        }
    }

    /// Many results files: progress on stderr, the comparison table on stdout, optional Markdown / CSV / JSON.
    /// Exits non-zero when any file failed (after reporting all of them).
    func evaluateMany(_ batch: String, _ groundTruth: GroundTruth, _ metric: Metric) throws {
        let files = try resultFiles(in: batch)
        let progress = Progress(total: files.count, label: "evaluate", unit: "files")
        progress.enabled = !quiet
        let rows = evaluateBatch(
            groundTruth, files: files, metric: metric, vocIoUThresholds: iouThresholds,
            unknown: dropUnknown ? .drop : .reject
        ) { done, _ in progress.update(done) }
        let table = renderBatchMarkdown(rows, groundTruth: groundTruth.summary)
        print(table, terminator: "")
        if let markdown { try AtomicFile.write(table, to: URL(fileURLWithPath: markdown), createFolder: true) }
        if let csv { try AtomicFile.write(renderBatchCSV(rows), to: URL(fileURLWithPath: csv), createFolder: true) }
        if let json { try AtomicFile.write(renderBatchJSON(rows), to: URL(fileURLWithPath: json), createFolder: true) }
        let failed = rows.filter { $0.error != nil }
        if !failed.isEmpty {
            for row in failed { FileHandle.standardError.write(Data("error: \(row.error!)\n".utf8)) }
            throw ExitCode(2)
        }
    }

    func note(_ text: String) {
        if !quiet && isRootProcess { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }

    func seconds(since start: Date) -> String { String(format: "%.2f s", Date().timeIntervalSince(start)) }
}

Evaluate.main()
