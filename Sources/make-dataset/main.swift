import Foundation
import ArgumentParser
import Data
import Imaging

/// `make-dataset`: writes generated data sets to disk.
struct MakeDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-dataset",
        abstract: "Write a generated data set to disk.",
        discussion: """
            Kinds:
              shapes     the 10-class 32x32 shape set (disc, square, triangle, ...) as
                         an image folder (one sub-folder per class, PNG), usable by
                         `train` (data.format: folder) and `classify --data`.
              detection  a procedural detection set (circle, rectangle, triangle,
                         star, cross, ring, arrow, heart) on cluttered, unevenly lit
                         backgrounds, with occlusion and truncation. Writes
                         OUT/VOC/                 Pascal VOC devkit folder (JPEGImages,
                                                  Annotations, ImageSets/Main,
                                                  classes.txt); bndbox 1-based inclusive
                         OUT/annotations/         COCO instances_<split>.json; bbox
                                                  0-based [x, y, w, h], file_name
                                                  relative to OUT/VOC/JPEGImages
                         OUT/crops/<split>/<class>/  with --crops: object crops
                         Splits: train = the first --images images, val the next
                         --val, test the next --test, trainval = train + val.
                         Image i depends only on (--seed, i).
            Examples:
              make-dataset --kind shapes --out data/shapes-val --images 200 --seed 7
              make-dataset --kind detection --out data/synth --images 2000 \\
                           --val 200 --test 200 --crops --preview 8
            """)

    @Option(help: "What to generate: shapes or detection.") var kind = "shapes"
    @Option(help: "Output folder (created; existing files with the same names are replaced).") var out: String
    @Option(help: "Number of images (detection: training images).") var images = 100
    @Option(help: "Random seed (the same seed gives the same images).") var seed: UInt64 = 0
    @Option(help: "shapes: upscale factor for viewing (nearest neighbour); 1 keeps 32x32.") var scale = 1

    @Option(help: "detection: validation images (after the training images).") var val = 0
    @Option(help: "detection: test images (after the validation images).") var test = 0
    @Flag(help: "detection: also write object crops (class folders) for the train and val splits.") var crops = false
    @Option(help: "detection: side of the crops in pixels.") var cropSize = 64
    @Option(help: "detection: smallest object box side in pixels.") var minSize: Int?
    @Option(help: "detection: largest object box side in pixels (clamped to each image's shorter side).") var maxSize:
        Int?
    @Option(help: "detection: image width, N or MIN-MAX (default 320-448).") var width: String?
    @Option(help: "detection: image height, N or MIN-MAX (default 240-400).") var height: String?
    @Option(help: "detection: objects per image, N or MIN-MAX (default 1-5).") var objects: String?
    @Option(help: "detection: distractor shapes per image, N or MIN-MAX (default 2-8).") var distractors: String?
    @Flag(help: "detection: never let shapes overlap objects.") var noOcclusion = false
    @Flag(help: "detection: keep objects wholly inside the image.") var noTruncation = false
    @Option(help: "detection: also write this many preview PNGs with the boxes drawn to OUT/preview.") var preview = 0
    @Option(help: "detection: threads (0 = all cores).") var threads = 0

    static let detectionOnly = [
        "--val", "--test", "--crops", "--crop-size", "--min-size", "--max-size", "--width", "--height",
        "--objects", "--distractors", "--no-occlusion", "--no-truncation", "--preview", "--threads"
    ]

    /// "N" or "MIN-MAX" (also "MIN...MAX").
    static func parseRange(_ text: String, flag: String) throws -> (Int, Int) {
        let parts = text.replacingOccurrences(of: "...", with: "-").split(
            separator: "-", omittingEmptySubsequences: false)
        let values = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if values.count == 1, let v = values[0] { return (v, v) }
        if values.count == 2, let a = values[0], let b = values[1] {
            guard a <= b else {
                throw ValidationError("\(flag) \(text): the minimum \(a) is larger than the maximum \(b)")
            }
            return (a, b)
        }
        throw ValidationError("\(flag) \(text): expected N or MIN-MAX with non-negative whole numbers (e.g. 320-448)")
    }

    func detectionConfig() throws -> SyntheticDetectionConfig {
        var c = SyntheticDetectionConfig()
        if let width { (c.minWidth, c.maxWidth) = try Self.parseRange(width, flag: "--width") }
        if let height { (c.minHeight, c.maxHeight) = try Self.parseRange(height, flag: "--height") }
        if let objects { (c.minObjects, c.maxObjects) = try Self.parseRange(objects, flag: "--objects") }
        if let distractors {
            (c.minDistractors, c.maxDistractors) = try Self.parseRange(distractors, flag: "--distractors")
        }
        if let minSize { c.minObjectSize = minSize }
        if let maxSize { c.maxObjectSize = maxSize }
        c.allowOcclusion = !noOcclusion
        c.allowTruncation = !noTruncation
        // The checks users hit most, in the words of the flags; config.validate() covers the rest.
        guard c.minWidth >= 32, c.minHeight >= 32 else {
            throw ValidationError("--width and --height must be at least 32 pixels")
        }
        guard c.minObjectSize >= 8 else {
            throw ValidationError("--min-size must be at least 8 pixels (got \(c.minObjectSize))")
        }
        guard c.minObjectSize <= c.maxObjectSize else {
            throw ValidationError("--min-size \(c.minObjectSize) is larger than --max-size \(c.maxObjectSize)")
        }
        guard c.minObjectSize <= min(c.minWidth, c.minHeight) else {
            throw ValidationError(
                "--min-size \(c.minObjectSize) does not fit in images as small as \(c.minWidth)x\(c.minHeight) "
                + "(--width/--height)"
            )
        }
        guard c.minObjects >= 1 else {
            throw ValidationError("--objects must allow at least 1 object per image (got \(objects ?? ""))")
        }
        do { try c.validate() } catch let e as SyntheticConfigError {
            // Name the flags rather than the recipe keys.
            var message = "\(e.field): \(e.message)"
            for (key, flag) in [
                ("min_object_size", "--min-size"), ("max_object_size", "--max-size"), ("min_width", "--width"),
                ("max_width", "--width"), ("min_height", "--height"), ("max_height", "--height"),
                ("min_objects", "--objects"), ("max_objects", "--objects"), ("min_distractors", "--distractors"),
                ("max_distractors", "--distractors")
            ] {
                message = message.replacingOccurrences(of: key, with: flag)
            }
            throw ValidationError(message)
        }
        return c
    }

    func validate() throws {
        guard ["shapes", "detection"].contains(kind) else {
            throw ValidationError("unknown --kind \(kind); available: shapes, detection")
        }
        guard images > 0 else { throw ValidationError("--images must be positive (got \(images))") }
        if kind == "shapes" {
            guard (1...32).contains(scale) else { throw ValidationError("--scale must be in 1...32") }
            let given = CommandLine.arguments.filter { arg in
                Self.detectionOnly.contains { arg == $0 || arg.hasPrefix($0 + "=") }
            }
            guard given.isEmpty else {
                throw ValidationError("\(given.joined(separator: ", ")) only apply to --kind detection")
            }
            return
        }
        guard scale == 1 else { throw ValidationError("--scale only applies to --kind shapes") }
        guard val >= 0 else { throw ValidationError("--val must not be negative (got \(val))") }
        guard test >= 0 else { throw ValidationError("--test must not be negative (got \(test))") }
        guard images + val + test <= SyntheticDetection.maxImages else {
            throw ValidationError("--images + --val + --test must be at most \(SyntheticDetection.maxImages)")
        }
        guard (8...1024).contains(cropSize) else {
            throw ValidationError("--crop-size must be in 8...1024 (got \(cropSize))")
        }
        guard preview >= 0 else { throw ValidationError("--preview must not be negative (got \(preview))") }
        guard threads >= 0 else { throw ValidationError("--threads must not be negative (got \(threads))") }
        _ = try detectionConfig()
    }

    func run() throws {
        if kind == "detection" { try runDetection() } else { try runShapes() }
    }

    func runDetection() throws {
        let config = try detectionConfig()
        let root = URL(fileURLWithPath: out)
        let splits = try SyntheticDetection.standardSplits(train: images, val: val, test: test)
        var cropOptions: SyntheticCropOptions?
        if crops {
            var o = SyntheticCropOptions()
            o.size = cropSize
            cropOptions = o
        }
        let summary = try SyntheticDetection.write(
            to: root, seed: seed, config: config, splits: splits, crops: cropOptions,
            threads: threads == 0 ? nil : threads)
        print(summary)
        print(
            "VOC devkit: \(root.appendingPathComponent("VOC").path) (ImageSets/Main: train, val, trainval, test; class "
            + "list classes.txt)"
        )
        print(
            "COCO: \(root.appendingPathComponent("annotations").path)/instances_{train,val,trainval,test}.json, images "
            + "in \(root.appendingPathComponent("VOC/JPEGImages").path)"
        )
        if crops {
            print(
                "crops: \(root.appendingPathComponent("crops").path)/{train,val}/<class>/ (\(cropSize)x\(cropSize) PNG)"
            )
        }
        if preview > 0 {
            let dir = root.appendingPathComponent("preview")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<min(preview, images + val + test) {
                var (img, objects) = SyntheticDetection.image(index: i, seed: seed, config: config)
                for o in objects {
                    // The outline lies just outside the box, so a tight box shows the shape touching it.
                    let color = Palette.color(o.classIndex)
                    img.drawRect(
                        x: o.box.x1 - 1, y: o.box.y1 - 1, width: o.box.width + 2, height: o.box.height + 2, color: color
                    )
                    let tag = o.className + (o.occluded ? " occ" : "") + (o.truncated ? " trunc" : "")
                    img.drawLabel(
                        tag,
                        at: (
                            max(0, min(o.box.x1 - 1, img.width - RGBImage.labelSize(tag).width)),
                            max(0, o.box.y1 - 1 - RGBImage.labelSize(tag).height)
                        ),
                        background: color, foreground: Palette.textColor(on: color))
                }
                try ImageIO.writePNG(img, to: dir.appendingPathComponent(SyntheticDetection.imageName(i) + ".png"))
            }
            print("previews with boxes: \(dir.path)")
        }
    }

    func runShapes() throws {
        let ds = SyntheticShapes.make(count: images, seed: seed)
        let root = URL(fileURLWithPath: out)
        for name in SyntheticShapes.classNames {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        for k in 0..<ds.count {
            var img = RGBImage(width: 32 * scale, height: 32 * scale)
            for y in 0..<(32 * scale) {
                for x in 0..<(32 * scale) {
                    let p = (y / scale) * 32 + x / scale
                    for c in 0..<3 { img.pixels[(y * 32 * scale + x) * 3 + c] = ds.pixels[k * 3072 + c * 1024 + p] }
                }
            }
            let name = SyntheticShapes.classNames[ds.labels[k]]
            try ImageIO.writePNG(
                img, to: root.appendingPathComponent(name).appendingPathComponent(String(format: "%05d.png", k)))
        }
        print("wrote \(ds.count) images in \(SyntheticShapes.classNames.count) class folders under \(root.path)")
    }
}

MakeDataset.main()
