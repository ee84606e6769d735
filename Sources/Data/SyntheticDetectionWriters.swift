import Foundation
import Engine
import Imaging

/// How object crops for classifier pretraining are cut: a square around each object's (clipped) box, with
/// random context margin and jitter, resampled to `size` x `size` (area-averaged, so large objects do not
/// alias).
public struct SyntheticCropOptions: Codable, Equatable, Sendable {
    /// Side of the written PNGs.
    public var size = 64
    /// Context on each side, as a fraction of the box's longer side, drawn from min...max per crop.
    public var minMargin = 0.1
    public var maxMargin = 0.3
    /// Random shift of the crop centre, as a fraction of the box's longer side (each axis).
    public var jitter = 0.08
    /// The splits to cut crops from (others given to the writer are skipped).
    public var splits = ["train", "val"]

    public init() {}

    public func validate() throws {
        func fail(_ field: String, _ m: String) -> SyntheticConfigError { SyntheticConfigError(field: field, m) }
        guard (8...1024).contains(size) else { throw fail("crop size", "must be in 8...1024 (got \(size))") }
        guard minMargin.isFinite, maxMargin.isFinite, minMargin >= 0, maxMargin <= 2 else {
            throw fail("crop margin", "must be in 0...2 (got \(minMargin)...\(maxMargin))")
        }
        guard minMargin <= maxMargin else {
            throw fail("crop margin", "min margin \(minMargin) is larger than max margin \(maxMargin)")
        }
        guard jitter.isFinite, jitter >= 0, jitter <= 0.5 else {
            throw fail("crop jitter", "must be in 0...0.5 (got \(jitter))")
        }
    }
}

/// What a writer produced.
public struct SyntheticDatasetSummary: Sendable, CustomStringConvertible {
    public var root: URL
    /// Images per split, by name.
    public var splitSizes: [String: Int]
    /// Distinct images generated (the union of the splits).
    public var images: Int
    public var objects: Int
    public var objectsPerClass: [Int]
    public var occluded: Int
    public var truncated: Int
    /// Smallest and largest side of the (clipped) boxes.
    public var minBoxSide: Int
    public var maxBoxSide: Int
    /// Crops written per split (empty when none were asked for).
    public var crops: [String: Int]
    public var seconds: Double

    public var description: String {
        var lines: [String] = []
        let splits = splitSizes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append(
            "wrote \(images) images (\(splits)) under \(root.path) in \(String(format: "%.1f", seconds)) s "
            + "(\(String(format: "%.0f", Double(images) / max(seconds, 1e-9))) images/s)"
        )
        let perClass = zip(SyntheticDetection.classNames, objectsPerClass).map { "\($0) \($1)" }.joined(separator: ", ")
        lines.append(
            "objects: \(objects) (\(String(format: "%.2f", Double(objects) / Double(max(images, 1)))) per image; "
            + "\(perClass))"
        )
        lines.append("occluded \(occluded), truncated \(truncated); box sides \(minBoxSide)...\(maxBoxSide) px")
        if !crops.isEmpty {
            lines.append(
                "crops: " + crops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

/// Writing the data set to disk. Layout under `root`:
///
///     VOC/JPEGImages/000001.jpg            the images (JPEG, config.jpeg_quality); index i is file i + 1
///     VOC/Annotations/000001.xml           Pascal VOC annotations (bndbox 1-based inclusive)
///     VOC/ImageSets/Main/<split>.txt       image stems per split
///     VOC/classes.txt                      the class names in label order (one per line)
///     annotations/instances_<split>.json   COCO instances; file_name is relative to VOC/JPEGImages,
///                                          image id = index + 1, category id = class index + 1
///     crops/<split>/<class>/000001_0.png   object crops (writeCrops / crops option), one folder per class
///     synthetic.json                       seed, config and splits, to regenerate or extend the set
///
/// The VOC folder is a devkit folder for `VOCGroundTruth.load(devkit: root/VOC, split:)`; the COCO JSONs
/// load with `COCOGroundTruth.load` and name the same image files.
extension SyntheticDetection {
    /// The usual splits: train = 0..<train, val next, test after that, and trainval = train + val.
    public static func standardSplits(train: Int, val: Int = 0, test: Int = 0) throws -> [String: Range<Int>] {
        guard train > 0 else {
            throw SyntheticConfigError(field: "images", "the number of training images must be positive (got \(train))")
        }
        guard val >= 0 else {
            throw SyntheticConfigError(
                field: "val", "the number of validation images must not be negative (got \(val))")
        }
        guard test >= 0 else {
            throw SyntheticConfigError(field: "test", "the number of test images must not be negative (got \(test))")
        }
        return [
            "train": 0..<train, "val": train..<(train + val), "trainval": 0..<(train + val),
            "test": (train + val)..<(train + val + test)
        ]
    }

    /// The most images one call writes (a guard against typos such as an extra digit).
    public static let maxImages = 10_000_000

    static func validateSplits(_ splits: [String: Range<Int>]) throws -> [Int] {
        func fail(_ m: String) -> SyntheticConfigError { SyntheticConfigError(field: "splits", m) }
        guard !splits.isEmpty else { throw fail("no splits given (e.g. [\"train\": 0..<100])") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        for (name, r) in splits.sorted(by: { $0.key < $1.key }) {
            guard !name.isEmpty, name.allSatisfy(allowed.contains) else {
                throw fail("split name \"\(name)\" must be non-empty letters, digits, _ or - (it becomes a file name)")
            }
            guard r.lowerBound >= 0 else { throw fail("split \(name) starts at a negative image index (\(r))") }
            guard r.upperBound <= maxImages else { throw fail("split \(name) (\(r)) goes past \(maxImages) images") }
        }
        var indices = Set<Int>()
        for r in splits.values { indices.formUnion(r) }
        guard !indices.isEmpty else { throw fail("every split is empty: there are no images to write") }
        return indices.sorted()
    }

    /// Writes the VOC folder (images, annotations, image sets) under `root/VOC`.
    @discardableResult
    public static func writeVOC(
        to root: URL, seed: UInt64, config: SyntheticDetectionConfig = .init(),
        splits: [String: Range<Int>]
    ) throws -> SyntheticDatasetSummary {
        try write(to: root, seed: seed, config: config, splits: splits, voc: true, coco: false, crops: nil)
    }

    /// Writes the COCO JSONs under `root/annotations`, and the images they name under `root/VOC/JPEGImages`.
    @discardableResult
    public static func writeCOCO(
        to root: URL, seed: UInt64, config: SyntheticDetectionConfig = .init(),
        splits: [String: Range<Int>]
    ) throws -> SyntheticDatasetSummary {
        try write(to: root, seed: seed, config: config, splits: splits, voc: false, coco: true, crops: nil)
    }

    /// Writes only the classification crops: `root/<split>/<class>/<stem>_<k>.png` for the splits named in
    /// `options.splits`; every class gets a folder (usable as an image-folder data set per split).
    @discardableResult
    public static func writeCrops(
        to root: URL, seed: UInt64, config: SyntheticDetectionConfig = .init(),
        splits: [String: Range<Int>], options: SyntheticCropOptions = .init()
    ) throws -> SyntheticDatasetSummary {
        try write(
            to: root, seed: seed, config: config, splits: splits, voc: false, coco: false, crops: options,
            cropRoot: root)
    }

    /// Generates each image of the splits once and writes the VOC folder, the COCO JSONs and the crops
    /// (under `root/crops`, or `cropRoot`) as asked. Images are generated on `threads` threads (default: the
    /// number of cores); the output does not depend on the thread count. `progress(done, total)` is called
    /// from the worker threads.
    @discardableResult
    public static func write(
        to root: URL, seed: UInt64, config: SyntheticDetectionConfig = .init(),
        splits: [String: Range<Int>], voc: Bool = true, coco: Bool = true,
        crops: SyntheticCropOptions? = nil, cropRoot: URL? = nil, threads: Int? = nil,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> SyntheticDatasetSummary {
        let start = Date()
        try config.validate()
        try crops?.validate()
        let indices = try validateSplits(splits)
        guard voc || coco || crops != nil else {
            throw SyntheticConfigError(field: "outputs", "nothing to write: ask for VOC, COCO or crops")
        }
        if let crops, !crops.splits.contains(where: { splits[$0] != nil }) {
            throw SyntheticConfigError(
                field: "crop splits",
                "none of the crop splits (\(crops.splits.joined(separator: ", "))) is among the splits given "
                + "(\(splits.keys.sorted().joined(separator: ", ")))"
            )
        }
        let fm = FileManager.default
        let vocRoot = root.appendingPathComponent("VOC")
        let jpegDir = vocRoot.appendingPathComponent("JPEGImages")
        let annDir = vocRoot.appendingPathComponent("Annotations")
        let cocoDir = root.appendingPathComponent("annotations")
        let cropDir = cropRoot ?? root.appendingPathComponent("crops")
        let writeImages = voc || coco
        do {
            if writeImages { try fm.createDirectory(at: jpegDir, withIntermediateDirectories: true) }
            if voc {
                try fm.createDirectory(at: annDir, withIntermediateDirectories: true)
                try fm.createDirectory(
                    at: vocRoot.appendingPathComponent("ImageSets/Main"), withIntermediateDirectories: true)
            }
            if coco { try fm.createDirectory(at: cocoDir, withIntermediateDirectories: true) }
        } catch {
            throw DataError(
                file: root.path, "cannot create the output folders (\((error as NSError).localizedDescription))")
        }

        // Which image indices get crops, and for which split.
        var cropSplitOf: [Int: [String]] = [:]
        if let crops {
            for name in crops.splits.sorted() {
                guard let r = splits[name] else { continue }
                for c in SyntheticDetection.classNames {
                    try fm.createDirectory(
                        at: cropDir.appendingPathComponent(name).appendingPathComponent(c),
                        withIntermediateDirectories: true)
                }
                for i in r { cropSplitOf[i, default: []].append(name) }
            }
        }

        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var objects: [Int: [SyntheticObject]] = [:]
            var sizes: [Int: (Int, Int)] = [:]
            var cropCounts: [String: Int] = [:]
            var error: Error?
            var done = 0
        }
        let results = Results()
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, indices.count))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for n in stride(from: w, to: indices.count, by: workers) {
                let i = indices[n]
                results.lock.lock()
                let stop = results.error != nil
                results.lock.unlock()
                if stop { return }
                do {
                    let (image, objects) = SyntheticDetection.image(index: i, seed: seed, config: config)
                    let stem = imageName(i)
                    if writeImages {
                        try ImageIO.writeJPEG(
                            image, to: jpegDir.appendingPathComponent(stem + ".jpg"), quality: config.jpegQuality)
                    }
                    if voc {
                        let xml = vocXML(stem: stem, width: image.width, height: image.height, objects: objects)
                        try writeText(xml, to: annDir.appendingPathComponent(stem + ".xml"))
                    }
                    var cropped: [String: Int] = [:]
                    if let crops, let names = cropSplitOf[i] {
                        var rng = SeededRNG(seed: derivedSeed(derivedSeed(seed, UInt64(i)), 0x4352_4F50))
                        for (k, o) in objects.enumerated() {
                            let crop = cropObject(image, box: o.box, options: crops, rng: &rng)
                            for name in names {
                                let url = cropDir.appendingPathComponent(name).appendingPathComponent(o.className)
                                    .appendingPathComponent("\(stem)_\(k).png")
                                try ImageIO.writePNG(crop, to: url)
                                cropped[name, default: 0] += 1
                            }
                        }
                    }
                    results.lock.lock()
                    results.objects[i] = objects
                    results.sizes[i] = (image.width, image.height)
                    for (k, v) in cropped { results.cropCounts[k, default: 0] += v }
                    results.done += 1
                    let done = results.done
                    results.lock.unlock()
                    progress?(done, indices.count)
                } catch {
                    results.lock.lock()
                    if results.error == nil { results.error = error }
                    results.lock.unlock()
                }
            }
        }
        if let error = results.error { throw error }

        let sortedSplits = splits.sorted { $0.key < $1.key }
        if voc {
            for (name, r) in sortedSplits {
                let text = r.map { imageName($0) + "\n" }.joined()
                try writeText(text, to: vocRoot.appendingPathComponent("ImageSets/Main/\(name).txt"))
            }
            try writeText(classNames.joined(separator: "\n") + "\n", to: vocRoot.appendingPathComponent("classes.txt"))
        }
        if coco {
            for (name, r) in sortedSplits {
                let json = cocoJSON(indices: Array(r), sizes: results.sizes, objects: results.objects, split: name)
                try writeText(json, to: cocoDir.appendingPathComponent("instances_\(name).json"))
            }
        }
        if writeImages {
            let record = Provenance(
                seed: seed, config: config,
                splits: sortedSplits.map { .init(name: $0.key, start: $0.value.lowerBound, end: $0.value.upperBound) },
                classNames: classNames, generator: "SyntheticDetection v1")
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            enc.keyEncodingStrategy = .convertToSnakeCase
            try writeText(
                String(decoding: try enc.encode(record), as: UTF8.self) + "\n",
                to: root.appendingPathComponent("synthetic.json"))
        }

        var perClass = [Int](repeating: 0, count: classNames.count)
        var total = 0, occluded = 0, truncated = 0, minSide = Int.max, maxSide = 0
        for list in results.objects.values {
            for o in list {
                perClass[o.classIndex] += 1
                total += 1
                if o.occluded { occluded += 1 }
                if o.truncated { truncated += 1 }
                minSide = min(minSide, o.box.width, o.box.height)
                maxSide = max(maxSide, o.box.width, o.box.height)
            }
        }
        return SyntheticDatasetSummary(
            root: root, splitSizes: splits.mapValues(\.count), images: indices.count, objects: total,
            objectsPerClass: perClass, occluded: occluded, truncated: truncated,
            minBoxSide: total == 0 ? 0 : minSide, maxBoxSide: maxSide,
            crops: results.cropCounts, seconds: Date().timeIntervalSince(start))
    }

    struct Provenance: Codable {
        struct Split: Codable { var name: String; var start: Int; var end: Int }
        var seed: UInt64
        var config: SyntheticDetectionConfig
        var splits: [Split]
        var classNames: [String]
        var generator: String
    }

    static func writeText(_ text: String, to url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw DataError(file: url.path, "cannot write (\((error as NSError).localizedDescription))")
        }
    }

    /// One Pascal VOC annotation file (the VOC2007 schema; `occluded` as in VOC2010 and later).
    public static func vocXML(stem: String, width: Int, height: Int, objects: [SyntheticObject]) -> String {
        var s = """
            <annotation>
            \t<folder>VOC</folder>
            \t<filename>\(stem).jpg</filename>
            \t<source>
            \t\t<database>ResNetDetector synthetic shapes</database>
            \t</source>
            \t<size>
            \t\t<width>\(width)</width>
            \t\t<height>\(height)</height>
            \t\t<depth>3</depth>
            \t</size>
            \t<segmented>0</segmented>

            """
        for o in objects {
            let b = o.box.voc
            s += """
                \t<object>
                \t\t<name>\(o.className)</name>
                \t\t<pose>Unspecified</pose>
                \t\t<truncated>\(o.truncated ? 1 : 0)</truncated>
                \t\t<occluded>\(o.occluded ? 1 : 0)</occluded>
                \t\t<difficult>0</difficult>
                \t\t<bndbox>
                \t\t\t<xmin>\(b.xmin)</xmin>
                \t\t\t<ymin>\(b.ymin)</ymin>
                \t\t\t<xmax>\(b.xmax)</xmax>
                \t\t\t<ymax>\(b.ymax)</ymax>
                \t\t</bndbox>
                \t</object>

                """
        }
        return s + "</annotation>\n"
    }

    /// COCO instances JSON for the images `indices` (annotation ids count from 1 within the file).
    static func cocoJSON(indices: [Int], sizes: [Int: (Int, Int)], objects: [Int: [SyntheticObject]], split: String)
        -> String
    {
        var s =
            "{\n\"info\": {\"description\": \"ResNetDetector synthetic shapes, split \(split); bbox [x, y, w, h] in "
            + "pixels, 0-based; file_name relative to VOC/JPEGImages\", \"version\": \"1\"},\n"
        s += "\"licenses\": [],\n\"images\": ["
        for (n, i) in indices.enumerated() {
            let (w, h) = sizes[i] ?? (0, 0)
            s +=
                (n == 0 ? "\n" : ",\n")
                + "{\"id\": \(imageID(i)), \"file_name\": \"\(imageName(i)).jpg\", \"width\": \(w), \"height\": \(h)}"
        }
        s += "\n],\n\"annotations\": ["
        var id = 0
        for i in indices {
            for o in objects[i] ?? [] {
                id += 1
                let b = o.box.coco
                s += (id == 1 ? "\n" : ",\n")
                s +=
                    "{\"id\": \(id), \"image_id\": \(imageID(i)), \"category_id\": \(o.classIndex + 1), \"bbox\": "
                    + "[\(b.x), \(b.y), \(b.width), \(b.height)], \"area\": \(b.width * b.height), \"iscrowd\": 0}"
            }
        }
        s += "\n],\n\"categories\": ["
        for (k, name) in classNames.enumerated() {
            s += (k == 0 ? "\n" : ",\n") + "{\"id\": \(k + 1), \"name\": \"\(name)\", \"supercategory\": \"shape\"}"
        }
        return s + "\n]\n}\n"
    }

    /// A square crop around `box` with random margin and jitter, area-resampled to options.size; outside the
    /// image the edge pixels are repeated.
    public static func cropObject(
        _ image: RGBImage, box: SyntheticBox, options: SyntheticCropOptions, rng: inout SeededRNG
    ) -> RGBImage {
        let long = Double(max(box.width, box.height))
        let margin = options.minMargin + (options.maxMargin - options.minMargin) * rng.nextDouble()
        let side = long * (1 + 2 * margin)
        let cx = Double(box.x1 + box.x2) / 2 + (rng.nextDouble() * 2 - 1) * options.jitter * long
        let cy = Double(box.y1 + box.y2) / 2 + (rng.nextDouble() * 2 - 1) * options.jitter * long
        let n = options.size
        let step = side / Double(n)
        let k = max(1, min(6, Int(step.rounded(.up))))
        var out = RGBImage(width: n, height: n)
        let W = image.width, H = image.height
        image.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<n {
                    for ox in 0..<n {
                        var acc = (0, 0, 0)
                        for sy in 0..<k {
                            let y = cy - side / 2 + (Double(oy) + (Double(sy) + 0.5) / Double(k)) * step
                            let iy = min(max(Int(y.rounded(.down)), 0), H - 1)
                            for sx in 0..<k {
                                let x = cx - side / 2 + (Double(ox) + (Double(sx) + 0.5) / Double(k)) * step
                                let ix = min(max(Int(x.rounded(.down)), 0), W - 1)
                                let p = 3 * (iy * W + ix)
                                acc.0 += Int(src[p]); acc.1 += Int(src[p + 1]); acc.2 += Int(src[p + 2])
                            }
                        }
                        let q = 3 * (oy * n + ox), kk = k * k
                        dst[q] = UInt8((acc.0 + kk / 2) / kk); dst[q + 1] = UInt8((acc.1 + kk / 2) / kk);
                        dst[q + 2] = UInt8((acc.2 + kk / 2) / kk)
                    }
                }
            }
        }
        return out
    }
}
