import Foundation
import Detection
import DetectionReport
import ArgumentParser
import Engine
import Imaging
import Detector
import WeightImport
import Support
import NN
import Evaluation
import CommandOptions
import Cluster
import FileSupport

/// `detect`: run the detector on images and draw the boxes.
struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Detect objects in images with a Faster R-CNN (ResNet-C4) checkpoint and draw them.",
        discussion: """
            With no --weights, the bundled default (weights/detector.safetensors) and its class names are used.
            Two thresholds: --draw-thresh (0.5) decides what is drawn, listed and checked; --score-thresh (the
            checkpoint's test.score_threshold, 0.05) what is kept in --json / --voc-results for evaluation.
            Examples:
              swift run -c release detect photo.jpg --out boxes.png
              swift run -c release detect photos/ --out drawn/ --json results.json --draw-thresh 0.7
              swift run -c release detect val2017/ --gt instances_val2017.json --json results.json
              swift run -c release detect VOC2007/JPEGImages/ --voc-results results/ --voc-split test
              swift run -c release detect img.png --weights my_detector.safetensors --max-dets 20
              swift run -c release detect img.png --tta --weights a.safetensors --weights b.safetensors --box-voting
              mpirun -np 4 .build/release/detect photos/ --json results.json --out drawn/
            Under mpirun the images are shared out in contiguous blocks; each process draws its own images and
            process 0 prints the table and writes --json / --voc-results as one process would.
            """)

    @Argument(help: "Images (JPEG or PNG) or folders of images.") var inputs: [String]
    @Option(
        help:
            ArgumentHelp("Output picture (one input image) or folder (several). Default: <name>_boxes.png next to "
                + "nothing: stdout only.")
    ) var out: String?
    @Option(
        help:
            ArgumentHelp("Detector checkpoint (default: the bundled weights/detector.safetensors); repeat for an "
                + "ensemble of detectors of the same classes.")
    )
    var weights: [String] = []
    @OptionGroup(title: "Test-time augmentation and ensembles") var testTime: TestTimeOptions
    @Option(help: "YAML with test-time overrides (test.score_threshold, input.min_size, ...).") var config: String?
    @Option(
        help: ArgumentHelp(
            "Detection threshold: detections scoring at least this are kept in --json and --voc-results (default: the "
            + "checkpoint's test.score_threshold, 0.05 for evaluation).",
            valueName: "score"))
    var scoreThresh: Float?
    @Option(
        help: ArgumentHelp(
            "Drawing threshold: detections scoring at least this are drawn, listed in the table and checked by "
            + "--expect.",
            valueName: "score"))
    var drawThresh: Float = DetectionOutput.defaultDrawThreshold
    @Option(help: "Per-class NMS IoU threshold.") var nms: Float?
    @Option(help: "At most this many detections per image.") var maxDets: Int?
    @Option(help: "Shorter side of the network input (0 = the image's own size).") var minSize: Int?
    @Option(help: "Cap on the longer side of the network input (0 = no cap).") var maxSize: Int?
    @Option(
        help: ArgumentHelp(
            "Write all detections (above --score-thresh) as COCO results JSON.",
            discussion:
                "image_id: with --gt, the COCO id of the image with the same file name; otherwise a file stem of "
                + "digits becomes a number (COCO names files after zero-padded ids) and any other stem stays a string "
                  + "(Pascal VOC)."
        ))
    var json: String?
    @Option(
        help: ArgumentHelp(
            "COCO instances JSON whose images the inputs are: --json uses its image ids (matched by file name).",
            valueName: "instances.json"))
    var gt: String?
    @Option(
        help: ArgumentHelp(
            "Write Pascal VOC devkit result files into this folder: comp4_det_<split>_<class>.txt, lines '<image stem> "
            + "<score> <x1> <y1> <x2> <y2>'.",
            valueName: "folder"))
    var vocResults: String?
    @Option(help: ArgumentHelp("Split name in the --voc-results file names.", valueName: "name"))
    var vocSplit = "test"
    @OptionGroup var engine: EngineOptions
    @Option(
        help: ArgumentHelp(
            "Check the detections against Pascal VOC annotations: an .xml file (one image) or a folder of <image "
            + "stem>.xml.",
            discussion:
                "The drawn detections (>= --draw-thresh) must be exactly the annotated objects: each found with its "
                + "class at IoU >= --expect-iou, none wrong or a duplicate; the exit status is 1 otherwise."
        ))
    var expect: String?
    @Option(help: "IoU an annotated object needs with a detection of its class to count as found (with --expect).")
    var expectIou: Float = 0.7

    func validate() throws {
        func unit(_ v: Float?, _ name: String) throws {
            if let v, !(v.isFinite && v >= 0 && v <= 1) {
                throw ValidationError("\(name) \(v): give a number from 0 to 1")
            }
        }
        try unit(scoreThresh, "--score-thresh"); try unit(drawThresh, "--draw-thresh"); try unit(nms, "--nms")
        try unit(expectIou, "--expect-iou")
        if let maxDets, !(1...100_000).contains(maxDets) {
            throw ValidationError("--max-dets \(maxDets): give 1 to 100000")
        }
        for (name, v) in [("--min-size", minSize), ("--max-size", maxSize)] {
            if let v, !(0...DetectorConfig.maxInputSide).contains(v) {
                throw ValidationError("\(name) \(v): give 0 (no limit) to \(DetectorConfig.maxInputSide) pixels")
            }
        }
    }

    func run() throws { try reportingErrors { try body() } }

    /// What one image gave: its detections (or the error), and the picture written for it.
    struct ImageRecord: Codable {
        var exact: [DetectedObject.BitExact] = []
        var objects: [DetectedObject] {
            get { exact.map(\.object) }
            set { exact = newValue.map(DetectedObject.BitExact.init) }
        }
        var error: String? = nil
        var picture: String? = nil
        var renamed = false
    }

    static func defaultWeights() -> URL? {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                "weights/detector.safetensors"),
            exe.deletingLastPathComponent().appendingPathComponent("../../../weights/detector.safetensors").standardized
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    func body() throws {
        let world = try engine.start()
        let weightsURLs: [URL]
        if !weights.isEmpty {
            weightsURLs = weights.map { URL(fileURLWithPath: $0) }
        } else if let d = Self.defaultWeights() {
            weightsURLs = [d]
        } else {
            throw DetectorError(
                "no --weights given and no bundled default detector (weights/detector.safetensors) was found")
        }
        var members: [DetectorRunner] = []
        for url in weightsURLs {
            let detector = try DetectorRunner(checkpoint: url)
            if let config { try detector.applyOverrides(yaml: URL(fileURLWithPath: config)) }
            if let scoreThresh { detector.config.test.scoreThreshold = scoreThresh }
            if let nms { detector.config.test.nmsThreshold = nms }
            if let maxDets { detector.config.test.detectionsPerImage = maxDets }
            if let minSize { detector.config.input.minSize = minSize }
            if let maxSize { detector.config.input.maxSize = maxSize }
            do { try detector.config.validate() } catch { throw DetectorError("\(url.path): \(error)") }
            members.append(detector)
        }
        let ensemble = try testTime.ensemble(members, names: weightsURLs.map(\.lastPathComponent))
        let detector = members[0]
        let single = members.count == 1 && ensemble.augmentation == nil

        // Expand folders; note non-images.
        var files: [URL] = []
        for p in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                if world.isRoot { FileHandle.standardError.write(Data("error: \(p): no such file or folder\n".utf8)) }
                files.append(URL(fileURLWithPath: p)); continue
            }
            if isDir.boolValue {
                for f in try FileManager.default.contentsOfDirectory(atPath: p).sorted() where !f.hasPrefix(".") {
                    let u = URL(fileURLWithPath: p).appendingPathComponent(f)
                    if ImageFormat(pathExtension: u.pathExtension) != nil {
                        files.append(u)
                    } else if world.isRoot {
                        print("note: skipping \(u.path) (not a .jpg/.jpeg/.png file)")
                    }
                }
            } else {
                files.append(URL(fileURLWithPath: p))
            }
        }
        guard !files.isEmpty else { throw ValidationError("no images to process") }

        // Everything that can be checked before the detector runs: ids, output locations.
        let groundTruth = try gt.map { try COCOGroundTruth.load(URL(fileURLWithPath: $0)) }
        let imageIDs = try ResultImageIDs.ids(for: files, groundTruth: groundTruth, groundTruthFile: gt ?? "")
        let inputPaths = Set(files.map { $0.resolvingSymlinksInPath().standardizedFileURL.path })
        func isInput(_ path: String) -> Bool {
            inputPaths.contains(URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path)
        }
        if let json, isInput(json) {
            throw ValidationError("--json \(json) is one of the input images: refusing to overwrite an input")
        }
        let classNames = detector.model.config.classNames
        let outIsDir =
            out.map {
                files.count > 1 || $0.hasSuffix("/")
                    || (try? URL(fileURLWithPath: $0).resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true
            } ?? false
        if world.isRoot {
            if let json { try OutputFolder.prepare(file: URL(fileURLWithPath: json), what: "--json file") }
            if let vocResults {
                try VOCResultFiles.prepare(
                    folder: URL(fileURLWithPath: vocResults), split: vocSplit,
                    classNames: classNames)
            }
            if let out, outIsDir {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            }
            if let out, !outIsDir, !isInput(out) {
                try OutputFolder.prepare(file: URL(fileURLWithPath: out), what: "--out picture")
            }
        }

        var expectIsDir: ObjCBool = false
        if let expect {
            guard FileManager.default.fileExists(atPath: expect, isDirectory: &expectIsDir) else {
                throw ValidationError("--expect \(expect): no such file or folder")
            }
            if !expectIsDir.boolValue && files.count > 1 {
                throw ValidationError("--expect with several images needs a folder of <image stem>.xml annotations")
            }
        }
        _ = world.allGather([])  // the other ranks write pictures only once rank 0 has made the folders

        /// Detects image k and draws its picture.
        func process(_ k: Int) -> ImageRecord {
            let url = files[k]
            var record = ImageRecord()
            do {
                let image = try ImageIO.read(url)
                record.objects = try single ? detector.detect(image) : ensemble.detect(image)
                if let out {
                    let stem = url.deletingPathExtension().lastPathComponent
                    var target =
                        outIsDir
                        ? URL(fileURLWithPath: out).appendingPathComponent(stem + "_boxes.png")
                        : URL(fileURLWithPath: out)
                    if target.standardizedFileURL.path == url.standardizedFileURL.path {
                        target = target.deletingPathExtension().appendingPathExtension("boxes.png")
                        record.renamed = true
                    }
                    let shown = record.objects.filter { $0.score >= drawThresh }
                    try ImageIO.write(DetectionOutput.draw(shown, on: image), to: target)
                    record.picture = target.path
                }
            } catch {
                let text = "\(error)"
                record.error = text.hasPrefix(url.path) ? text : url.path + ": " + text
            }
            return record
        }

        var failures = 0, checkFailures = 0
        var results: [[String: Any]] = []
        var vocEntries: [VOCResultFiles.Entry] = []
        /// Prints and collects image k's results, in input order (rank 0).
        func report(_ k: Int, _ record: ImageRecord, _ progress: Support.Progress) {
            let url = files[k]
            do {
                if let error = record.error { throw DetectorError(error) }
                let objects = record.objects
                let shown = objects.filter { $0.score >= drawThresh }
                progress.note(
                    DetectionOutput.table(
                        shown, image: url.path, hidden: objects.count - shown.count, threshold: drawThresh
                    )
                    .dropLast().description, toStdout: true)
                if let expect {
                    let xml =
                        expectIsDir.boolValue
                        ? URL(fileURLWithPath: expect).appendingPathComponent(
                            url.deletingPathExtension().lastPathComponent + ".xml")
                        : URL(fileURLWithPath: expect)
                    let gt = try VOCGroundTruth.parseAnnotation(try Data(contentsOf: xml), file: xml.path)
                    let c = DetectionOutput.check(objects, against: gt, minIoU: expectIou, minScore: drawThresh)
                    progress.note(c.summary(minIoU: expectIou, fpScore: drawThresh), toStdout: true)
                    if !c.passed { checkFailures += 1 }
                }
                results += DetectionOutput.cocoResults(
                    objects, imageID: imageIDs[k].jsonValue,
                    categoryId: detector.model.config.categoryId(label:))
                if vocResults != nil {
                    let stem = url.deletingPathExtension().lastPathComponent
                    vocEntries += objects.map { o in
                        VOCResultFiles.Entry(
                            image: stem, classIndex: o.label - 1, score: Double(o.score),
                            box: o.box)
                    }
                }
                if let picture = record.picture {
                    if record.renamed {
                        progress.note("note: not overwriting the input; writing \(picture)", toStdout: true)
                    }
                    progress.note("wrote \(picture)", toStdout: true)
                }
            } catch {
                failures += 1
                let text = "\(error)"
                progress.error("error: \(text.hasPrefix(url.path) ? text : url.path + ": " + text)")
            }
        }

        // Each process detects and draws its block of the images; process 0 then reports every image in input order.
        let mine = world.block(of: files.count)
        let progress = Support.Progress(
            total: mine.count, label: world.size > 1 ? "detect (process 0 of \(world.size))" : "detect",
            unit: "img")
        progress.enabled = world.isRoot && files.count > 1
        if world.size == 1 {
            for k in files.indices { report(k, process(k), progress); progress.update(k + 1) }
        } else {
            let all = try world.gatherBlocks(files.count) { k in
                defer { progress.update(k + 1 - mine.lowerBound) }; return process(k)
            }
            guard world.isRoot else { return }
            progress.enabled = false
            for (k, record) in all.enumerated() { report(k, record, progress) }
        }
        if let json {
            try AtomicFile.write(
                try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]),
                to: URL(fileURLWithPath: json))
            print("wrote \(results.count) detections to \(json)")
        }
        if let vocResults {
            let written = try VOCResultFiles.write(
                vocEntries, classNames: classNames, split: vocSplit, to: URL(fileURLWithPath: vocResults))
            print("wrote \(vocEntries.count) detections to \(written.count) VOC result files in \(vocResults)")
        }
        if failures > 0 {
            FileHandle.standardError.write(Data("\(failures) of \(files.count) images failed\n".utf8))
            throw ExitCode.failure
        }
        if checkFailures > 0 {
            FileHandle.standardError.write(
                Data("\(checkFailures) of \(files.count) images failed the --expect check\n".utf8))
            throw ExitCode.failure
        }
    }
}

Detect.main()
