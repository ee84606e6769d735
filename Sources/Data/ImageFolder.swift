import Foundation
import Support
import Engine
import Imaging

/// What to do with an image that fails to decode while training or evaluating.
public enum BadImagePolicy: String, ChoiceField {
    /// Leave it out of its batch with a warning, and count it.
    case skip
    /// Stop with the decoder's error.
    case stop
}

/// An ImageNet-style folder: one sub-folder per class holding JPEG/PNG files. Classes are the sorted
/// sub-folder names (as torchvision's ImageFolder).
public struct ImageFolderDataset: Sendable {
    public let root: URL
    public let classes: [String]
    public let files: [URL]
    public let labels: [Int]
    public var count: Int { files.count }
    public var numClasses: Int { classes.count }

    static let extensions: Set<String> = ["jpg", "jpeg", "png", "JPG", "JPEG", "PNG"]

    public init(root: URL, classes: [String]? = nil) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw DataError(file: root.path, "image folder not found (expected one sub-folder per class)")
        }
        let subdirs = try fm.contentsOfDirectory(atPath: root.path).filter {
            var d: ObjCBool = false
            return !$0.hasPrefix(".") && fm.fileExists(atPath: root.appendingPathComponent($0).path, isDirectory: &d)
                && d.boolValue
        }.sorted()
        let names = classes ?? subdirs
        guard !names.isEmpty else { throw DataError(file: root.path, "no class sub-folders found") }
        if let classes {
            let extra = Set(subdirs).subtracting(classes)
            if !extra.isEmpty {
                throw DataError(
                    file: root.path, "sub-folders \(extra.sorted()) are not among the \(classes.count) known classes")
            }
        }
        var files: [URL] = [], labels: [Int] = []
        for (i, name) in names.enumerated() {
            let dir = root.appendingPathComponent(name)
            guard let list = try? fm.contentsOfDirectory(atPath: dir.path) else { continue }
            for f in list.sorted() where Self.extensions.contains((f as NSString).pathExtension) {
                files.append(dir.appendingPathComponent(f)); labels.append(i)
            }
        }
        guard !files.isEmpty else {
            throw DataError(file: root.path, "no JPEG or PNG images found in the class sub-folders")
        }
        self.root = root; self.classes = names; self.files = files; self.labels = labels
    }
}

/// Image transforms for ImageNet-style training and testing, producing normalised planar floats.
public enum ImageTransforms {
    /// Resizes so that the shorter side is `short` (bilinear, no antialiasing), keeping the aspect ratio; the
    /// longer side is truncated as torchvision's `Resize(short)` does.
    public static func resizeShorter(_ img: RGBImage, to short: Int) throws -> RGBImage {
        let (w0, h0) = (img.width, img.height)
        let w = w0 <= h0 ? short : max(1, Int(Double(short) * Double(w0) / Double(h0)))
        let h = w0 <= h0 ? max(1, Int(Double(short) * Double(h0) / Double(w0))) : short
        if w == img.width && h == img.height { return img }
        return try img.resizedBilinear(width: w, height: h)
    }

    /// Writes the normalised crop (x0, y0, size, size) of `img` into dst (3, size, size), mirrored if `flip`.
    public static func writeCrop(
        _ img: RGBImage, x0: Int, y0: Int, size: Int, flip: Bool, normalization: Normalization,
        into dst: UnsafeMutablePointer<Float>
    ) {
        let mean = normalization.mean, std = normalization.std
        img.pixels.withUnsafeBufferPointer { px in
            for c in 0..<3 {
                for y in 0..<size {
                    let sy = min(max(y0 + y, 0), img.height - 1)
                    for x in 0..<size {
                        let sx = min(max(x0 + (flip ? size - 1 - x : x), 0), img.width - 1)
                        dst[(c * size + y) * size + x] =
                            (Float(px[(sy * img.width + sx) * 3 + c]) / 255 - mean[c]) / std[c]
                    }
                }
            }
        }
    }

    /// Scale augmentation (shorter side drawn from `scaleRange`), a random `crop` x `crop` window and a
    /// horizontal flip with probability 0.5.
    public static func trainCrop(
        _ img: RGBImage, scaleRange: ClosedRange<Int>, crop: Int, normalization: Normalization,
        rng: inout SeededRNG, into dst: UnsafeMutablePointer<Float>
    ) throws {
        let s = scaleRange.lowerBound + rng.int(below: scaleRange.count)
        let r = try resizeShorter(img, to: max(s, crop))
        let x0 = rng.int(below: r.width - crop + 1), y0 = rng.int(below: r.height - crop + 1)
        let flip = rng.int(below: 2) == 1
        writeCrop(r, x0: x0, y0: y0, size: crop, flip: flip, normalization: normalization, into: dst)
    }

    /// The crops used at test time: the centre (1 crop) or the 4 corners + centre and their mirror
    /// images (10 crops), from the image resized to shorter side `resize` (0 = as is).
    public static func testCrops(_ img: RGBImage, resize: Int, crop: Int, ten: Bool, normalization: Normalization)
        throws -> Tensor
    {
        let r = resize > 0 ? try resizeShorter(img, to: resize) : img
        guard r.width >= crop && r.height >= crop else {
            throw DataError(file: "", "image of \(r.width)x\(r.height) is smaller than the \(crop)x\(crop) crop")
        }
        // Centre as torchvision's CenterCrop: round((size - crop) / 2), ties to even.
        let cx = Int((Double(r.width - crop) / 2).rounded(.toNearestOrEven))
        let cy = Int((Double(r.height - crop) / 2).rounded(.toNearestOrEven))
        var origins = [(cx, cy)]
        if ten {
            origins = [(0, 0), (r.width - crop, 0), (0, r.height - crop), (r.width - crop, r.height - crop), (cx, cy)]
        }
        let flips = ten ? [false, true] : [false]
        let t = Tensor(uninitialized: [origins.count * flips.count, 3, crop, crop])
        var k = 0
        for f in flips {
            for (x0, y0) in origins {
                writeCrop(
                    r, x0: x0, y0: y0, size: crop, flip: f, normalization: normalization,
                    into: t.data + k * 3 * crop * crop)
                k += 1
            }
        }
        return t
    }
}
