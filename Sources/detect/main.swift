import Foundation
import ArgumentParser
import Engine
import Imaging
import Detector
import WeightImport
import Support
import NN
import Evaluation

/// `detect`: run the detector on images and draw the boxes.
struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Detect objects in images with a Faster R-CNN (ResNet-C4) checkpoint and draw them.",
        discussion: """
        With no --weights, the bundled default (weights/detector.safetensors) and its class names are used.
        Examples:
          swift run -c release detect photo.jpg --out boxes.png
          swift run -c release detect photos/ --out drawn/ --json results.json --score-thresh 0.5
          swift run -c release detect img.png --weights my_detector.safetensors --max-dets 20
        """)

    @Argument(help: "Images (JPEG or PNG) or folders of images.") var inputs: [String]
    @Option(help: "Output picture (one input image) or folder (several). Default: <name>_boxes.png next to nothing: stdout only.") var out: String?
    @Option(help: "Detector checkpoint (default: the bundled weights/detector.safetensors).") var weights: String?
    @Option(help: "YAML with test-time overrides (test.score_threshold, input.min_size, ...).") var config: String?
    @Option(help: "Minimum score of a drawn/listed detection.") var scoreThresh: Float?
    @Option(help: "Per-class NMS IoU threshold.") var nms: Float?
    @Option(help: "At most this many detections per image.") var maxDets: Int?
    @Option(help: "Shorter side of the network input (0 = the image's own size).") var minSize: Int?
    @Option(help: "Cap on the longer side of the network input (0 = no cap).") var maxSize: Int?
    @Option(help: "Write all detections as COCO results JSON (image_id is the file stem).") var json: String?
    @Option(help: "Engine threads (default: all cores).") var threads: Int?
    @Option(help: ArgumentHelp("Check the detections against Pascal VOC annotations: an .xml file (one image) or a folder of <image stem>.xml.",
                               discussion: "Every annotated object must be found (its class, IoU >= --expect-iou) and no detection scoring >= 0.5 may be wrong; the exit status is 1 otherwise."))
    var expect: String?
    @Option(help: "IoU an annotated object needs with a detection of its class to count as found (with --expect).") var expectIou: Float = 0.7

    func run() throws {
        do { try body() } catch let e as ExitCode { throw e } catch let e as ValidationError { throw e } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    static func defaultWeights() -> URL? {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("weights/detector.safetensors"),
                          exe.deletingLastPathComponent().appendingPathComponent("../../../weights/detector.safetensors").standardized]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    func body() throws {
        if let threads { Threading.threads = threads }
        let weightsURL: URL
        if let weights { weightsURL = URL(fileURLWithPath: weights) }
        else if let d = Self.defaultWeights() { weightsURL = d }
        else { throw DetectorError("no --weights given and no bundled default detector (weights/detector.safetensors) was found") }

        var detector = try DetectorRunner(importing: weightsURL)
        if let config { try detector.applyOverrides(yaml: URL(fileURLWithPath: config)) }
        if let scoreThresh { detector.config.test.scoreThreshold = scoreThresh }
        if let nms { detector.config.test.nmsThreshold = nms }
        if let maxDets { detector.config.test.detectionsPerImage = maxDets }
        if let minSize { detector.config.input.minSize = minSize }
        if let maxSize { detector.config.input.maxSize = maxSize }

        // Expand folders; note non-images.
        var files: [URL] = []
        for p in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                FileHandle.standardError.write(Data("error: \(p): no such file or folder\n".utf8)); files.append(URL(fileURLWithPath: p)); continue
            }
            if isDir.boolValue {
                for f in try FileManager.default.contentsOfDirectory(atPath: p).sorted() where !f.hasPrefix(".") {
                    let u = URL(fileURLWithPath: p).appendingPathComponent(f)
                    if ImageFormat(pathExtension: u.pathExtension) != nil { files.append(u) }
                    else { print("note: skipping \(u.path) (not a .jpg/.jpeg/.png file)") }
                }
            } else { files.append(URL(fileURLWithPath: p)) }
        }
        guard !files.isEmpty else { throw ValidationError("no images to process") }
        let outIsDir = out.map { files.count > 1 || $0.hasSuffix("/") || (try? URL(fileURLWithPath: $0).resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true } ?? false
        if let out, outIsDir { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }

        var failures = 0, checkFailures = 0
        var results: [[String: Any]] = []
        var expectIsDir: ObjCBool = false
        if let expect {
            guard FileManager.default.fileExists(atPath: expect, isDirectory: &expectIsDir) else { throw ValidationError("--expect \(expect): no such file or folder") }
            if !expectIsDir.boolValue && files.count > 1 { throw ValidationError("--expect with several images needs a folder of <image stem>.xml annotations") }
        }
        for url in files {
            do {
                let image = try ImageIO.read(url)
                let objects = try detector.detect(image)
                print(DetectionOutput.table(objects, image: url.path), terminator: "")
                if let expect {
                    let xml = expectIsDir.boolValue ? URL(fileURLWithPath: expect).appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".xml")
                                                    : URL(fileURLWithPath: expect)
                    let gt = try VOCGroundTruth.parseAnnotation(try Data(contentsOf: xml), file: xml.path)
                    let c = DetectionOutput.check(objects, against: gt, minIoU: expectIou)
                    print(c.summary(minIoU: expectIou, fpScore: 0.5))
                    if !c.passed { checkFailures += 1 }
                }
                results += DetectionOutput.cocoResults(objects, imageID: url.deletingPathExtension().lastPathComponent,
                                                       categoryId: detector.model.config.categoryId(label:))
                if let out {
                    var target = outIsDir ? URL(fileURLWithPath: out).appendingPathComponent(url.deletingPathExtension().lastPathComponent + "_boxes.png")
                                          : URL(fileURLWithPath: out)
                    if target.standardizedFileURL.path == url.standardizedFileURL.path {
                        target = target.deletingPathExtension().appendingPathExtension("boxes.png")
                        print("note: not overwriting the input; writing \(target.path)")
                    }
                    try ImageIO.write(DetectionOutput.draw(objects, on: image), to: target)
                    print("wrote \(target.path)")
                }
            } catch {
                failures += 1
                let text = "\(error)"
                FileHandle.standardError.write(Data("error: \(text.hasPrefix(url.path) ? text : url.path + ": " + text)\n".utf8))
            }
        }
        if let json {
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys]), to: URL(fileURLWithPath: json))
            print("wrote \(results.count) detections to \(json)")
        }
        if failures > 0 {
            FileHandle.standardError.write(Data("\(failures) of \(files.count) images failed\n".utf8))
            throw ExitCode.failure
        }
        if checkFailures > 0 {
            FileHandle.standardError.write(Data("\(checkFailures) of \(files.count) images failed the --expect check\n".utf8))
            throw ExitCode.failure
        }
    }
}

Detect.main()
