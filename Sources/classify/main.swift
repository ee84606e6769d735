import Foundation
import ArgumentParser
import CommandOptions
import Engine
import NN
import ResNet
import Data
import Imaging
import Classification
import Support
import FileSupport

/// `classify`: run a trained classifier on images, evaluate it on a folder, or analyse layer responses.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify images with a ResNet checkpoint, evaluate top-1/top-5 error, or analyse layer responses.",
        discussion: """
            Examples:
              swift run -c release classify photo.jpg --weights r101.safetensors --arch resnet101 --topk 5
              swift run -c release classify img.png --weights w.safetensors --resize none --crop none --json --logits
              swift run -c release classify --data /data/imagenet/val --weights r50.safetensors --crop ten
              swift run -c release classify --data val/ --weights plain34.safetensors --responses plain34.csv
              swift run -c release classify --data val/ --weights r50.safetensors --weights r101.safetensors \\
                  --weights r152.safetensors
              swift run -c release classify --data val/ --weights r101.safetensors --scales 224,256,384,480,640
            Several --weights (same classes, any depths) form an ensemble: the softmax outputs are averaged; with --data
            one table gives the top-1 / top-5 error of every member and of the ensemble. --scales runs each model on
            the image resized to each shorter side (fully convolutionally, unless --crop is given) and averages.
            """)

    @Argument(help: "Images (JPEG or PNG).") var images: [String] = []
    @Option(help: "Checkpoint (safetensors; ours or torchvision-named); repeat for an ensemble.") var weights:
        [String] = []
    @Option(help: "Architecture, when the checkpoint does not name it (e.g. resnet101).") var arch: String?
    @Option(help: "Shorter side before cropping: a number, or 'none' to keep the image's size.") var resize: String?
    @Option(help: "center, ten (4 corners + centre and their mirror images, softmax averaged) or none.") var crop:
        String?
    @Option(help: "Crop size.") var cropSize: Int?
    @Option(
        help: ArgumentHelp(
            "Multi-scale testing: shorter sides to average over, e.g. 224,256,384,480,640 (the crop default becomes "
            + "none: whole images, fully convolutional).",
            valueName: "list"))
    var scales: String?
    @Option(help: "How many classes to show.") var topk = 5
    @Option(help: "Class names, one per line (default: the checkpoint's).") var labels: String?
    @Flag(help: "Print one JSON object per image.") var json = false
    @Flag(help: "With --json: include the whole logits vector.") var logits = false
    @Option(help: "Evaluate top-1/top-5 error over an image folder (one sub-folder per class).") var data: String?
    @Option(help: "With --data: write the std of every 3x3 layer's responses to this CSV (and a PNG plot beside it).")
    var responses: String?
    @Option(help: "With --responses: images used.") var responseImages = 256
    @OptionGroup var engine: EngineOptions

    func validate() throws {
        if let cropSize, !(1...4096).contains(cropSize) {
            throw ValidationError("--crop-size \(cropSize): give 1 to 4096")
        }
        if !(1...100_000).contains(topk) { throw ValidationError("--topk \(topk): give 1 to 100000") }
        if let resize, resize != "none", !(Int(resize).map { (1...8192).contains($0) } ?? false) {
            throw ValidationError("--resize \(resize): give a shorter side from 1 to 8192, or none")
        }
        if !(1...1_000_000).contains(responseImages) {
            throw ValidationError("--response-images \(responseImages): give 1 to 1000000")
        }
    }

    func run() throws { try reportingErrors(usageErrors: false) { try body() } }

    /// The sizes of `--scales`: a comma-separated list of shorter sides, each 1...4096.
    static func parseScales(_ text: String) throws -> [Int] {
        do { return try parseSizeList(text, range: 1...4096) } catch let e as RecipeError {
            throw ValidationError("--scales \(text): \(e) (give e.g. 224,256,384)")
        }
    }

    func body() throws {
        _ = try engine.start()
        guard !weights.isEmpty else { throw ValidationError("give --weights CHECKPOINT (repeat it for an ensemble)") }
        guard !images.isEmpty || data != nil else { throw ValidationError("give images to classify or --data DIR") }
        let scaleList = try scales.map(Self.parseScales)
        if weights.count > 1 && logits {
            throw ValidationError("--logits prints one model's logits; an ensemble averages probabilities")
        }
        if weights.count > 1 && responses != nil {
            throw ValidationError("--responses analyses one model: give one --weights")
        }
        var members: [Classifier] = []
        for w in weights { members.append(try classifier(w, scales: scaleList)) }
        let short = weights.map { URL(fileURLWithPath: $0).lastPathComponent }
        let ensemble = try ClassifierEnsemble(members, names: Set(short).count == short.count ? short : weights)
        let clf = members[0]
        let names: [String]? = ensemble.classNames[0].hasPrefix("class ") ? nil : ensemble.classNames

        if let data {
            let ds = try ImageFolderDataset(root: URL(fileURLWithPath: data), classes: names)
            if let responses {
                try writeResponses(clf, ds, to: URL(fileURLWithPath: responses))
                return
            }
            let bar = Progress(total: ds.count, label: "classify", unit: "img")
            if members.count == 1 && scaleList == nil {
                let r = try clf.evaluate(ds) { bar.update($0) }
                for s in r.skipped { print("skipped: \(s)") }
                if json {
                    let obj: [String: Any] = [
                        "images": r.count,
                        "models": [["name": ensemble.names[0], "top1_error": r.top1, "top5_error": r.top5]]
                    ]
                    print(
                        String(
                            data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]),
                            encoding: .utf8)!)
                } else {
                    print(
                        String(
                            format: "%d images (%@ crop): top-1 error %.2f%%, top-5 error %.2f%%", r.count,
                            clf.crop.rawValue, 100 * r.top1, 100 * r.top5))
                }
                return
            }
            let r = try ensemble.evaluate(ds) { bar.update($0) }
            for s in r.skipped { print("skipped: \(s)") }
            if json {
                print(
                    String(
                        data: try JSONSerialization.data(withJSONObject: r.json, options: [.sortedKeys]),
                        encoding: .utf8)!)
            } else {
                let how =
                    "\(clf.crop.rawValue) crop"
                    + (scaleList.map { ", scales \($0.map(String.init).joined(separator: ","))" } ?? "")
                print("\(r.count) images (\(how)):")
                print(r.table, terminator: "")
            }
            return
        }
        var failures = 0
        for path in images {
            let img: RGBImage
            do { img = try ImageIO.read(URL(fileURLWithPath: path)) } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8)); failures += 1; continue
            }
            let single = members.count == 1 ? try clf.predict(img) : nil
            let l = single?.logits ?? []
            let (each, p): ([[Float]], [Float]) = try single.map { ([], $0.probabilities) } ?? ensemble.predict(img)
            func top(_ p: [Float]) -> [Int] {
                Array(
                    p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(max(1, min(topk, p.count)))
                )
            }
            let classNames = ensemble.classNames
            if json {
                func entries(_ p: [Float]) -> [[String: Any]] {
                    top(p).map { ["class": $0, "name": classNames[$0], "probability": Double(p[$0])] as [String: Any] }
                }
                var obj: [String: Any] = ["image": path, "top": entries(p)]
                if logits { obj["logits"] = l.map { Double($0) } }
                if !each.isEmpty {
                    obj["members"] = zip(ensemble.names, each).map {
                        ["weights": $0.0, "top": entries($0.1)] as [String: Any]
                    }
                }
                print(
                    String(
                        data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)!
                )
            } else {
                print(path + (members.count > 1 ? " (ensemble of \(members.count))" : ""))
                for c in top(p) { print(String(format: "  %6.2f%%  %@", 100 * p[c], classNames[c] as NSString)) }
            }
        }
        if failures > 0 { throw ExitCode.failure }
    }

    /// One member: the checkpoint with the command's input settings.
    func classifier(_ path: String, scales scaleList: [Int]?) throws -> Classifier {
        let (net, file) = try ModelIO.load(URL(fileURLWithPath: path), arch: arch)
        var names = ModelIO.classNames(file)
        if let labels {
            let text: String
            do { text = try String(contentsOfFile: labels, encoding: .utf8) } catch {
                throw RecipeValueError(message: "\(labels): cannot read the labels file")
            }
            let list = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let trimmed = list.last == "" ? Array(list.dropLast()) : list
            guard trimmed.count == net.config.numClasses else {
                throw RecipeValueError(
                    message:
                        "\(labels): has \(trimmed.count) labels but the network has \(net.config.numClasses) classes")
            }
            names = trimmed
        }
        if let n = names, n.count != net.config.numClasses { names = nil }
        var clf = Classifier(model: net, classNames: names)
        clf.applyInputMetadata(file.metadata)
        if let resize { clf.resize = resize == "none" ? 0 : (Int(resize) ?? -1) }
        guard clf.resize >= 0 else { throw ValidationError("--resize takes a number or 'none'") }
        if let scaleList {
            clf.scales = scaleList
            clf.crop = .none
        }
        if let crop {
            guard let c = Classifier.Crop(rawValue: crop) else {
                throw ValidationError("--crop takes center, ten or none")
            }
            clf.crop = c
        }
        if let cropSize { clf.cropSize = cropSize }
        return clf
    }

    func writeResponses(_ clf: Classifier, _ ds: ImageFolderDataset, to url: URL) throws {
        var rng = SeededRNG(seed: 0)
        let idx = Array(rng.permutation(ds.count).prefix(responseImages))
        var src = ImageFolderSource(ds)
        src.normalization = clf.normalization
        src.crop = clf.cropSize
        src.testResize = clf.resize
        let (x, _, _) = try src.batch(idx)
        let stds = clf.layerResponses(x)
        var csv = "index,layer,std,sorted_std\n"
        let sorted = stds.map { $0.1 }.sorted(by: >)
        for (i, (name, s)) in stds.enumerated() { csv += "\(i + 1),\(name),\(s),\(sorted[i])\n" }
        try AtomicFile.write(Data(csv.utf8), to: url)
        let chart = LineChart(
            title: "\(clf.model.config.name): layer responses (std)", xLabel: "layer index", yLabel: "std",
            series: [
                LineSeries(name: "original order", ys: stds.map { $0.1 }, lineWidth: 2),
                LineSeries(name: "sorted by magnitude", ys: sorted, lineWidth: 2)
            ])
        let png = url.deletingPathExtension().appendingPathExtension("png")
        try ImageIO.writePNG(chart.render(width: 900, height: 500), to: png)
        print("wrote \(stds.count) layer responses to \(url.path) and \(png.path)")
    }
}

Classify.main()
