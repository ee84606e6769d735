import Foundation
import Engine
import Imaging

// MARK: - Configuration

/// Settings of the procedural detection data set (`SyntheticDetection`). Plain Codable with defaults, so a
/// YAML recipe (snake_case keys through `Recipe`) can set any of them. Ranges are inclusive `min...max`.
///
/// Sizes are in pixels. An object's size is the width and the height of its whole (unclipped) box: both lie
/// in `min_object_size ... max_object_size`, the maximum clamped per image to the image's shorter side. The
/// range must leave room for aspect ratios: the (clamped) maximum is at least 1.25 x the minimum + 2.
public struct SyntheticDetectionConfig: Codable, Equatable, Sendable {
    /// Image width range (each image draws its own).
    public var minWidth = 320
    public var maxWidth = 448
    /// Image height range.
    public var minHeight = 240
    public var maxHeight = 400
    /// Object box side range (both sides of the whole box); the maximum is clamped to the image.
    public var minObjectSize = 16
    public var maxObjectSize = 300
    /// Objects per image. Every image holds at least `min_objects`; when a scene is too crowded to place
    /// more without breaking `min_visible_fraction`, it may hold fewer than it drew (never fewer than the min).
    public var minObjects = 1
    public var maxObjects = 5
    /// Distractor shapes per image (thin lines, scribbles, letter-like marks, elongated blobs, small spiky shards).
    public var minDistractors = 2
    public var maxDistractors = 8
    /// Later objects and distractors may cover parts of earlier objects.
    public var allowOcclusion = true
    /// Objects may run over the image border (their boxes are then clipped and marked truncated).
    public var allowTruncation = true
    /// Every object keeps at least this fraction of its pixels visible (inside the image and not covered).
    public var minVisibleFraction = 0.6
    /// JPEG quality of the written images.
    public var jpegQuality = 95

    public init() {}

    /// The largest sensible image side; bigger would only waste memory and time.
    public static let maxImageSide = 4096

    /// Throws a `SyntheticConfigError` naming the first setting that is out of range or inconsistent.
    public func validate() throws {
        func fail(_ field: String, _ message: String) -> SyntheticConfigError {
            SyntheticConfigError(field: field, message)
        }
        func range(_ name: String, _ lo: Int, _ hi: Int, least: Int, most: Int) throws {
            guard lo >= least else { throw fail("min_\(name)", "must be at least \(least) (got \(lo))") }
            guard hi <= most else { throw fail("max_\(name)", "must be at most \(most) (got \(hi))") }
            guard lo <= hi else { throw fail("min_\(name)", "min_\(name) (\(lo)) is larger than max_\(name) (\(hi))") }
        }
        try range("width", minWidth, maxWidth, least: 32, most: Self.maxImageSide)
        try range("height", minHeight, maxHeight, least: 32, most: Self.maxImageSide)
        try range("object_size", minObjectSize, maxObjectSize, least: 8, most: Self.maxImageSide)
        try range("objects", minObjects, maxObjects, least: 1, most: 100)
        try range("distractors", minDistractors, maxDistractors, least: 0, most: 200)
        let smallestSide = min(minWidth, minHeight)
        guard minObjectSize <= smallestSide else {
            throw fail(
                "min_object_size",
                "objects of at least \(minObjectSize) px cannot fit in images as small as \(minWidth)x\(minHeight) "
                + "(min_width x min_height); lower min_object_size or raise the image size"
            )
        }
        // Shapes of different aspect ratios (an upright arrow, a stretched rectangle) need room between the
        // shortest and the longest box side; the longest is clamped to the image's shorter side.
        let largest = min(maxObjectSize, smallestSide)
        let needed = (5 * minObjectSize + 3) / 4 + 2
        guard largest >= needed else {
            let what =
                largest < maxObjectSize
                ? "the smallest image side (\(smallestSide))" : "max_object_size (\(maxObjectSize))"
            throw fail(
                "max_object_size",
                "\(what) leaves no room for different aspect ratios: with min_object_size \(minObjectSize) the largest "
                + "object side must be at least \(needed) (1.25 x min + 2)"
            )
        }
        guard minVisibleFraction.isFinite, minVisibleFraction >= 0.3, minVisibleFraction <= 1 else {
            throw fail(
                "min_visible_fraction",
                "must be in 0.3...1 (got \(minVisibleFraction)); less than 30% of a shape is not recognisable")
        }
        guard (1...100).contains(jpegQuality) else {
            throw fail("jpeg_quality", "must be in 1...100 (got \(jpegQuality))")
        }
        if !allowOcclusion {
            // Without overlap the required objects must fit side by side with room to spare.
            let need = Double(minObjects) * Double(minObjectSize * minObjectSize)
            guard need <= 0.3 * Double(minWidth * minHeight) else {
                throw fail(
                    "min_objects",
                    "\(minObjects) objects of at least \(minObjectSize)x\(minObjectSize) px do not fit side by side in "
                    + "a \(minWidth)x\(minHeight) image without occlusion; lower min_objects or min_object_size, or "
                      + "allow occlusion"
                )
            }
        }
    }
}

/// A setting of `SyntheticDetectionConfig` (or an argument of the writers) that cannot work.
public struct SyntheticConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The setting, as its snake_case recipe key (`min_object_size`) or argument name.
    public var field: String
    public var message: String
    public init(field: String, _ message: String) { self.field = field; self.message = message }
    public var description: String { "synthetic detection data: \(field): \(message)" }
}

// MARK: - Objects and boxes

/// A pixel-aligned box: columns `x1 ..< x2`, rows `y1 ..< y2` (0-based, x2/y2 exclusive, i.e. the far pixel
/// edge). As continuous corners this is exactly the torchvision / COCO convention.
///
/// - Pascal VOC XML: `xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2` (1-based inclusive pixel indices:
///   the first and last covered column, counted from 1).
/// - COCO JSON: `bbox = [x1, y1, x2 - x1, y2 - y1]` (0-based top-left edge, width and height in pixels).
public struct SyntheticBox: Codable, Equatable, Hashable, Sendable {
    public var x1: Int
    public var y1: Int
    public var x2: Int
    public var y2: Int
    public init(x1: Int, y1: Int, x2: Int, y2: Int) { self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2 }

    public var width: Int { x2 - x1 }
    public var height: Int { y2 - y1 }
    /// Pascal VOC `bndbox`: 1-based inclusive.
    public var voc: (xmin: Int, ymin: Int, xmax: Int, ymax: Int) { (x1 + 1, y1 + 1, x2, y2) }
    /// COCO `bbox`: 0-based `[x, y, w, h]`.
    public var coco: (x: Int, y: Int, width: Int, height: Int) { (x1, y1, x2 - x1, y2 - y1) }
}

/// One object of a generated image.
public struct SyntheticObject: Codable, Equatable, Sendable {
    /// Index into `SyntheticDetection.classNames` (COCO category id and detector label are this + 1).
    public var classIndex: Int
    /// The tight box of the object's pixels inside the image, including the parts that other shapes cover.
    public var box: SyntheticBox
    /// The tight box of the whole object; differs from `box` only when the object runs over the border.
    public var fullBox: SyntheticBox
    /// Part of the object lies outside the image.
    public var truncated: Bool
    /// Part of the object (inside the image) is covered by a later object or a distractor.
    public var occluded: Bool
    /// Visible pixels / all pixels of the whole object (>= `min_visible_fraction`).
    public var visibleFraction: Double

    public var className: String { SyntheticDetection.classNames[classIndex] }
}

/// A generated image with everything known about it.
public struct SyntheticScene: Sendable {
    public var image: RGBImage
    public var objects: [SyntheticObject]
    /// The whole (unclipped) pixel mask of each object, in image coordinates, including covered parts.
    public var masks: [SyntheticMask]
    /// Row-major, one entry per pixel: the index of the object seen at that pixel, or -1 (background or a
    /// distractor).
    public var visibleOwner: [Int16]
    /// Distractors drawn (behind and in front of objects).
    public var distractorCount: Int
}

// MARK: - Generator

/// A procedural object-detection data set: shapes of distinct outline (not only colour) with random size,
/// aspect ratio, rotation, colour and fill texture (solid, stripes, noise, gradient) on textured, unevenly lit
/// backgrounds cluttered with distractors that are not in the class list (thin lines, scribbles, letter-like
/// marks, elongated blobs, small spiky shards). Objects may overlap (each keeps `min_visible_fraction` visible)
/// and run over the border.
///
/// Image `i` depends only on `(seed, i)`: generating 10 or 1000 images gives the same first 10.
public enum SyntheticDetection {
    /// The classes, each a distinct outline. Label / COCO category id = index + 1.
    public static let classNames = ["circle", "rectangle", "triangle", "star", "cross", "ring", "arrow", "heart"]

    /// Image index `i` as a VOC file stem / COCO image id: images are numbered from 1 as in VOC2007
    /// (`000001`) and COCO (ids >= 1), so index 0 is `"000001"` and id 1.
    public static func imageID(_ index: Int) -> Int { index + 1 }
    public static func imageName(_ index: Int) -> String {
        let s = String(imageID(index))
        return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
    }

    /// Image `index` of the data set with this seed, with its objects.
    public static func image(index: Int, seed: UInt64, config: SyntheticDetectionConfig = .init()) -> (
        RGBImage, [SyntheticObject]
    ) {
        let s = render(index: index, seed: seed, config: config)
        return (s.image, s.objects)
    }

    /// Image `index` with its object masks and visibility map (for tests and debugging). The config is
    /// expected to be valid (`config.validate()`); an invalid one traps with the validation message.
    public static func render(index: Int, seed: UInt64, config: SyntheticDetectionConfig = .init()) -> SyntheticScene {
        do { try config.validate() } catch { preconditionFailure("\(error)") }
        precondition(index >= 0, "synthetic image index must not be negative (got \(index))")
        var g = SceneGenerator(config: config, seed: derivedSeed(seed, UInt64(index)))
        return g.run()
    }
}

/// The per-image generator. All randomness comes from one `SeededRNG`, drawn in a fixed order.
struct SceneGenerator {
    let config: SyntheticDetectionConfig
    var rng: SeededRNG
    var width = 0, height = 0
    /// RGB interleaved, the picture being painted.
    var pixels: [UInt8] = []
    /// Per pixel: object index seen there, or -1.
    var owner: [Int16] = []
    var masks: [SyntheticMask] = []
    var classes: [Int] = []
    var colors: [SIMD3<Float>] = []
    /// In-image pixel count of each object's mask, and how many of those are still visible.
    var inImage: [Int] = []
    var visible: [Int] = []

    init(config: SyntheticDetectionConfig, seed: UInt64) {
        self.config = config
        rng = SeededRNG(seed: seed)
    }

    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + rng.int(below: hi - lo + 1) }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.nextDouble() }
    mutating func chance(_ p: Double) -> Bool { rng.nextDouble() < p }

    mutating func run() -> SyntheticScene {
        width = int(config.minWidth, config.maxWidth)
        height = int(config.minHeight, config.maxHeight)
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        owner = [Int16](repeating: -1, count: width * height)
        paintBackground()

        let wanted = int(config.minObjects, config.maxObjects)
        for k in 0..<wanted { placeObject(required: k < config.minObjects) }

        let distractors = int(config.minDistractors, config.maxDistractors)
        for _ in 0..<distractors { placeDistractor() }

        applyLighting()

        var objects: [SyntheticObject] = []
        for (k, mask) in masks.enumerated() {
            let full = mask.bounds!
            let clipped = mask.clipped(width: width, height: height).bounds!
            objects.append(
                SyntheticObject(
                    classIndex: classes[k],
                    box: SyntheticBox(x1: clipped.x0, y1: clipped.y0, x2: clipped.x1, y2: clipped.y1),
                    fullBox: SyntheticBox(x1: full.x0, y1: full.y0, x2: full.x1, y2: full.y1),
                    truncated: inImage[k] < mask.pixelCount,
                    occluded: visible[k] < inImage[k],
                    visibleFraction: Double(visible[k]) / Double(mask.pixelCount)))
        }
        let image = try! RGBImage(width: width, height: height, pixels: pixels)
        return SyntheticScene(
            image: image, objects: objects, masks: masks, visibleOwner: owner, distractorCount: distractors)
    }

    // MARK: Objects

    /// Draws a class, size, shape and position until the object fits the rules, then paints it. Optional
    /// objects give up after a few attempts; required ones keep trying with smaller sizes and, every ten
    /// rounds, another class (some outlines cannot meet narrow size limits at every rotation).
    mutating func placeObject(required: Bool) {
        var cls = rng.int(below: SyntheticDetection.classNames.count)
        let minSize = Double(config.minObjectSize)
        let maxSize = Double(min(config.maxObjectSize, width, height))
        let rounds = required ? 60 : 4
        for round in 0..<rounds {
            if round > 0 && round % 10 == 0 { cls = rng.int(below: SyntheticDetection.classNames.count) }
            // Log-uniform size (small objects as common as large ones per octave), shrinking after failures.
            let cap = max(minSize, maxSize * pow(0.75, Double(round % 10)))
            let size = minSize * pow(cap / minSize, rng.nextDouble())
            guard let mask = shapeMask(cls: cls, longSide: size, minSide: minSize, maxSide: maxSize) else { continue }
            let b = mask.bounds!
            for _ in 0..<12 {
                let (dx, dy) = position(for: b)
                let candidate = mask.translated(dx: dx, dy: dy)
                guard let cover = coverage(of: candidate) else { continue }
                guard Double(cover.inImage) >= config.minVisibleFraction * Double(candidate.pixelCount) else {
                    continue
                }
                if !config.allowTruncation && cover.inImage < candidate.pixelCount { continue }
                paintObject(candidate, cls: cls, cover: cover)
                return
            }
        }
    }

    /// An integer offset that moves a mask with bounds `b` (around the origin) somewhere into the image:
    /// usually fully inside; sometimes over the border (when allowed); sometimes next to an earlier object so
    /// that occlusion happens often enough to learn from.
    mutating func position(for b: PixelRect) -> (Int, Int) {
        let w = b.width, h = b.height
        if config.allowOcclusion, !masks.isEmpty, chance(0.35) {
            let other = masks[rng.int(below: masks.count)].bounds!
            let cx = Double(other.x0 + other.x1) / 2 + uniform(-0.6, 0.6) * Double(other.width + w) / 2
            let cy = Double(other.y0 + other.y1) / 2 + uniform(-0.6, 0.6) * Double(other.height + h) / 2
            return (Int(cx.rounded()) - (b.x0 + b.x1) / 2, Int(cy.rounded()) - (b.y0 + b.y1) / 2)
        }
        if config.allowTruncation && chance(0.2) || w > width || h > height {
            // Centre anywhere that keeps most of the box inside (the visible-fraction check decides).
            let x = int(-w / 3, max(-w / 3, width - 2 * w / 3)), y = int(-h / 3, max(-h / 3, height - 2 * h / 3))
            return (x - b.x0, y - b.y0)
        }
        return (int(0, width - w) - b.x0, int(0, height - h) - b.y0)
    }

    struct Coverage {
        var inImage = 0
        /// (object index, pixels of it this mask would cover)
        var covered: [(Int, Int)] = []
        /// Mean colour of the background pixels under the mask, and the colours of covered objects.
        var references: [SIMD3<Float>] = []
    }

    /// What painting `mask` on top would do; nil when it would break the occlusion rules (any coverage when
    /// occlusion is off, or an earlier object left with less than `min_visible_fraction` visible).
    func coverage(of mask: SyntheticMask) -> Coverage? {
        var c = Coverage()
        var counts = [Int](repeating: 0, count: masks.count)
        var sum = SIMD3<Float>(0, 0, 0), n: Float = 0
        for s in mask.spans where s.y >= 0 && s.y < height {
            let a = max(s.x0, 0), e = min(s.x1, width)
            if a >= e { continue }
            c.inImage += e - a
            let row = s.y * width
            for x in a..<e {
                let o = Int(owner[row + x])
                if o >= 0 {
                    counts[o] += 1
                } else if x & 3 == 0 {
                    let p = 3 * (row + x)
                    sum += SIMD3(Float(pixels[p]), Float(pixels[p + 1]), Float(pixels[p + 2]))
                    n += 1
                }
            }
        }
        if c.inImage == 0 { return nil }
        for (o, k) in counts.enumerated() where k > 0 {
            if !config.allowOcclusion { return nil }
            if Double(visible[o] - k) < config.minVisibleFraction * Double(masks[o].pixelCount) { return nil }
            c.covered.append((o, k))
            c.references.append(colors[o])
        }
        if n > 0 { c.references.append(sum / n) }
        return c
    }

    mutating func paintObject(_ mask: SyntheticMask, cls: Int, cover: Coverage) {
        let k = masks.count
        let base = pickColor(against: cover.references)
        let fill = randomFill(base: base, bounds: mask.bounds!, textured: true)
        for (o, n) in cover.covered { visible[o] -= n }
        paint(mask, fill: fill, setOwner: Int16(k), behind: false)
        masks.append(mask)
        classes.append(cls)
        colors.append(base)
        inImage.append(cover.inImage)
        visible.append(cover.inImage)
    }

    // MARK: Shapes

    /// The outline of class `cls` in unit coordinates (about -1...1, y down), with its own random parameters,
    /// and the largest stretch (aspect ratio) and rotation that keep it recognisable.
    mutating func outline(cls: Int) -> (contours: [[SIMD2<Double>]], maxStretch: Double, maxRotation: Double) {
        func circle(_ r: Double, _ n: Int = 96, reversed: Bool = false) -> [SIMD2<Double>] {
            (0..<n).map { i in
                let t = 2 * Double.pi * Double(reversed ? n - i : i) / Double(n)
                return SIMD2(r * cos(t), r * sin(t))
            }
        }
        switch cls {
        case 0:  // circle (an ellipse when stretched)
            return ([circle(1)], 1.5, .pi)
        case 1:  // rectangle
            return ([[SIMD2(-1, -1), SIMD2(1, -1), SIMD2(1, 1), SIMD2(-1, 1)]], 2.2, .pi)
        case 2:  // triangle, apex anywhere over the base
            let apex = uniform(-0.6, 0.6)
            return ([[SIMD2(apex, -1), SIMD2(1, 0.85), SIMD2(-1, 0.85)]], 1.5, .pi)
        case 3:  // five-pointed star
            let inner = uniform(0.38, 0.5)
            let pts = (0..<10).map { i -> SIMD2<Double> in
                let t = -Double.pi / 2 + Double(i) * Double.pi / 5
                let r = i % 2 == 0 ? 1.0 : inner
                return SIMD2(r * cos(t), r * sin(t))
            }
            return ([pts], 1.3, .pi)
        case 4:  // cross (plus; an X when rotated)
            let t = uniform(0.22, 0.36)
            let pts: [SIMD2<Double>] = [
                SIMD2(-t, -1), SIMD2(t, -1), SIMD2(t, -t), SIMD2(1, -t), SIMD2(1, t), SIMD2(t, t),
                SIMD2(t, 1), SIMD2(-t, 1), SIMD2(-t, t), SIMD2(-1, t), SIMD2(-1, -t), SIMD2(-t, -t)
            ]
            return ([pts], 1.4, .pi)
        case 5:  // ring: a disc with a concentric hole
            let inner = uniform(0.45, 0.68)
            return ([circle(1), circle(inner, reversed: true)], 1.4, .pi)
        case 6:  // arrow pointing right (any direction after rotation)
            let shaft = uniform(0.12, 0.22), head = uniform(0.42, 0.6), neck = uniform(0.0, 0.35)
            let pts: [SIMD2<Double>] = [
                SIMD2(-1, -shaft), SIMD2(neck, -shaft), SIMD2(neck, -head), SIMD2(1, 0),
                SIMD2(neck, head), SIMD2(neck, shaft), SIMD2(-1, shaft)
            ]
            return ([pts], 1.3, .pi)
        default:  // heart, kept roughly upright
            let pts = (0..<96).map { i -> SIMD2<Double> in
                let t = 2 * Double.pi * Double(i) / 96
                let s = sin(t)
                let x = 16 * s * s * s
                let y = 13 * cos(t) - 5 * cos(2 * t) - 2 * cos(3 * t) - cos(4 * t)
                return SIMD2(x / 16, -y / 16)
            }
            return ([pts], 1.25, 0.6)
        }
    }

    /// The mask of one object of class `cls` around the origin (sub-pixel centre in [0, 1)²), scaled so that
    /// its longer box side is about `longSide` with both sides within minSide...maxSide. Draws new parameters,
    /// aspect ratio and rotation a few times when a draw cannot meet the limits; nil if none does.
    mutating func shapeMask(cls: Int, longSide: Double, minSide: Double, maxSide: Double) -> SyntheticMask? {
        for _ in 0..<8 {
            let (contours, maxStretch, maxRotation) = outline(cls: cls)
            let stretch = exp(uniform(-log(maxStretch), log(maxStretch)))
            let angle = uniform(-maxRotation, maxRotation)
            let (c, s) = (cos(angle), sin(angle))
            let sx = stretch.squareRoot(), sy = 1 / stretch.squareRoot()
            var shaped = contours.map {
                $0.map { p in SIMD2(c * p.x * sx - s * p.y * sy, s * p.x * sx + c * p.y * sy) }
            }
            var lo = SIMD2(Double.infinity, .infinity), hi = -lo
            for p in shaped.joined() { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
            let ext = hi - lo
            // A continuous extent E covers E - 1 ... E + 1 pixel centres; aim half a pixel inside the limits
            // and check the rasterised box.
            var scale = longSide / max(ext.x, ext.y)
            if min(ext.x, ext.y) * scale < minSide + 0.5 { scale = (minSide + 0.5) / min(ext.x, ext.y) }
            if max(ext.x, ext.y) * scale > maxSide - 0.5 { continue }
            let centre = SIMD2(rng.nextDouble(), rng.nextDouble()) - (lo + hi) / 2 * scale
            shaped = shaped.map { $0.map { $0 * scale + centre } }
            let mask = SyntheticMask.polygons(shaped)
            if let b = mask.bounds, Double(min(b.width, b.height)) >= minSide, Double(max(b.width, b.height)) <= maxSide
            {
                return mask
            }
        }
        return nil
    }

    // MARK: Distractors

    /// Clutter that is not in the class list. Each is drawn behind the objects (only on background pixels) or,
    /// when occlusion is allowed, sometimes in front (if it leaves every object visible enough).
    mutating func placeDistractor() {
        let front = config.allowOcclusion && chance(0.35)
        var mask = distractorMask()
        if front {
            for _ in 0..<4 {
                if let cover = coverage(of: mask) {
                    let color = pickColor(against: cover.references)
                    for (o, n) in cover.covered { visible[o] -= n }
                    paint(
                        mask, fill: randomFill(base: color, bounds: mask.bounds!, textured: false), setOwner: -1,
                        behind: false)
                    return
                }
                mask = distractorMask()
            }
        }
        // Behind: contrast with the background and with the objects it touches.
        var refs: [SIMD3<Float>] = []
        var touched = Set<Int>()
        var sum = SIMD3<Float>(0, 0, 0), n: Float = 0
        for s in mask.spans where s.y >= 0 && s.y < height {
            let a = max(s.x0, 0), e = min(s.x1, width)
            if a >= e { continue }
            for x in a..<e {
                let o = Int(owner[s.y * width + x])
                if o >= 0 {
                    touched.insert(o)
                } else if x & 1 == 0 {
                    let p = 3 * (s.y * width + x)
                    sum += SIMD3(Float(pixels[p]), Float(pixels[p + 1]), Float(pixels[p + 2])); n += 1
                }
            }
        }
        if n > 0 { refs.append(sum / n) }
        for o in touched.sorted() { refs.append(colors[o]) }
        let color = pickColor(against: refs)
        paint(
            mask,
            fill: randomFill(
                base: color, bounds: mask.bounds ?? PixelRect(x0: 0, y0: 0, x1: 1, y1: 1), textured: false),
            setOwner: nil, behind: true)
    }

    mutating func distractorMask() -> SyntheticMask {
        let W = Double(width), H = Double(height)
        func point() -> SIMD2<Double> { SIMD2(rng.nextDouble() * W, rng.nextDouble() * H) }
        switch rng.int(below: 5) {
        case 0:  // a thin straight line, long and at most 3 px wide: far thinner than any object
            let a = point()
            let len = uniform(0.15, 0.6) * (W * W + H * H).squareRoot()
            let t = uniform(0, 2 * .pi)
            return .stroke(a, a + SIMD2(cos(t), sin(t)) * len, thickness: uniform(1, 3.2))
        case 1:  // a scribble: a random walk of thin strokes
            var p = point()
            var dir = uniform(0, 2 * .pi)
            let thickness = uniform(1, 2.4)
            var parts: [SyntheticMask] = []
            for _ in 0..<int(4, 10) {
                dir += uniform(-1.6, 1.6)
                let q = p + SIMD2(cos(dir), sin(dir)) * uniform(6, 22)
                parts.append(.stroke(p, q, thickness: thickness))
                p = q
            }
            return .union(parts)
        case 2:  // a line of letter-like marks: 1-px strokes between points of a 3x3 grid per cell
            let h = uniform(6, 11), w = h * uniform(0.5, 0.75)
            var origin = point()
            var parts: [SyntheticMask] = []
            for _ in 0..<int(3, 10) {
                for _ in 0..<int(2, 3) {
                    let a = origin + SIMD2(Double(rng.int(below: 3)) * w / 2, Double(rng.int(below: 3)) * h / 2)
                    let b = origin + SIMD2(Double(rng.int(below: 3)) * w / 2, Double(rng.int(below: 3)) * h / 2)
                    parts.append(.stroke(a, b, thickness: 1))
                }
                origin.x += w * uniform(1.3, 1.7)
            }
            return .union(parts)
        case 3:  // a blob: an elongated, gently lumpy bean (at least 2.5 times as long as wide, so it is
            // neither a circle nor a heart, and without corners)
            let long = uniform(8, max(9, min(45, 0.12 * min(W, H))))
            let aspect = uniform(2.5, 4)
            let c = point()
            let tilt = uniform(0, .pi)
            let (ct, st) = (cos(tilt), sin(tilt))
            let amps = [uniform(0.05, 0.12), uniform(0.04, 0.1), uniform(0.03, 0.08)]
            let phases = (0..<3).map { _ in uniform(0, 2 * .pi) }
            let freqs = [3.0, 4.0, 5.0]
            let pts = (0..<64).map { i -> SIMD2<Double> in
                let t = 2 * Double.pi * Double(i) / 64
                var rr = 1.0
                for j in 0..<3 { rr += amps[j] * sin(freqs[j] * t + phases[j]) }
                let u = cos(t) * rr * long, v = sin(t) * rr * long / aspect
                return c + SIMD2(ct * u - st * v, st * u + ct * v)
            }
            return .polygons([pts])
        default:  // a small spiky shard, well under the smallest object size (at most 10 px across)
            let r = uniform(2, max(2.5, min(5, 0.3 * Double(config.minObjectSize))))
            let c = point()
            let n = 2 * int(3, 5)
            let pts = (0..<n).map { i -> SIMD2<Double> in
                let t = 2 * Double.pi * (Double(i) + uniform(-0.3, 0.3)) / Double(n)
                return c + SIMD2(cos(t), sin(t)) * (r * (i % 2 == 0 ? uniform(0.7, 1) : uniform(0.2, 0.5)))
            }
            return .polygons([pts])
        }
    }

    // MARK: Colour and paint

    /// A random colour far from all `references` (the best of a few draws; the first one at distance >= 120
    /// in RGB is taken at once, which keeps the colours varied).
    mutating func pickColor(against references: [SIMD3<Float>]) -> SIMD3<Float> {
        var best = SIMD3<Float>(0, 0, 0), bestDistance: Float = -1
        for _ in 0..<16 {
            let c = SIMD3<Float>(Float(rng.int(below: 256)), Float(rng.int(below: 256)), Float(rng.int(below: 256)))
            var d = Float.infinity
            for r in references { let v = c - r; d = min(d, (v * v).sum().squareRoot()) }
            if d > bestDistance { best = c; bestDistance = d }
            if d >= 120 { break }
        }
        return best
    }

    enum Fill {
        case solid(SIMD3<Float>)
        /// Bands of `period` px along direction (nx, ny), alternating two colours.
        case stripes(SIMD3<Float>, SIMD3<Float>, nx: Float, ny: Float, period: Float)
        /// Per-pixel uniform noise of +-amplitude around the colour.
        case noise(SIMD3<Float>, amplitude: Float)
        /// From `a` at the projection `start` to `b` at `start + length` along (nx, ny).
        case gradient(SIMD3<Float>, SIMD3<Float>, nx: Float, ny: Float, start: Float, length: Float)
    }

    mutating func randomFill(base: SIMD3<Float>, bounds: PixelRect, textured: Bool) -> Fill {
        let r = rng.nextDouble()
        guard textured, r >= 0.4 else { return .solid(base) }
        let t = Float(uniform(0, 2 * .pi))
        let (nx, ny) = (cos(t), sin(t))
        // A second colour in the same hue family, clearly lighter or darker.
        let lum = (base * SIMD3(0.299, 0.587, 0.114)).sum()
        let shift: Float = lum > 128 ? -Float(uniform(55, 95)) : Float(uniform(55, 95))
        let other = clampColor(base + shift, 0, 255)
        if r < 0.6 { return .stripes(base, other, nx: nx, ny: ny, period: Float(uniform(3, 9))) }
        if r < 0.8 { return .noise(base, amplitude: Float(uniform(18, 40))) }
        let corners = [(bounds.x0, bounds.y0), (bounds.x1, bounds.y0), (bounds.x0, bounds.y1), (bounds.x1, bounds.y1)]
        let proj = corners.map { Float($0.0) * nx + Float($0.1) * ny }
        return .gradient(base, other, nx: nx, ny: ny, start: proj.min()!, length: max(1, proj.max()! - proj.min()!))
    }

    /// Paints the mask's in-image pixels. `behind`: only where no object is seen. `setOwner`: records the
    /// painted pixels as this object (or -1 for a distractor in front).
    mutating func paint(_ mask: SyntheticMask, fill: Fill, setOwner: Int16?, behind: Bool) {
        let W = width, H = height
        var rng = self.rng
        defer { self.rng = rng }
        pixels.withUnsafeMutableBufferPointer { px in
            owner.withUnsafeMutableBufferPointer { own in
                for s in mask.spans where s.y >= 0 && s.y < H {
                    let a = max(s.x0, 0), e = min(s.x1, W)
                    if a >= e { continue }
                    for x in a..<e {
                        let i = s.y * W + x
                        if behind && own[i] >= 0 { continue }
                        let c: SIMD3<Float>
                        switch fill {
                        case .solid(let v): c = v
                        case .stripes(let u, let v, let nx, let ny, let period):
                            let phase = (Float(x) * nx + Float(s.y) * ny) / period
                            c = Int(phase.rounded(.down)) & 1 == 0 ? u : v
                        case .noise(let v, let amplitude):
                            let bits = rng.next()
                            c =
                                v + SIMD3(Float(bits & 0xFF), Float((bits >> 8) & 0xFF), Float((bits >> 16) & 0xFF))
                                * (amplitude / 127.5) - amplitude
                        case .gradient(let u, let v, let nx, let ny, let start, let length):
                            let t = min(max((Float(x) * nx + Float(s.y) * ny - start) / length, 0), 1)
                            c = u + (v - u) * t
                        }
                        let q = clampColor(c, 0, 255)
                        px[3 * i] = UInt8(q.x.rounded()); px[3 * i + 1] = UInt8(q.y.rounded());
                        px[3 * i + 2] = UInt8(q.z.rounded())
                        if let setOwner { own[i] = setOwner }
                    }
                }
            }
        }
    }

    // MARK: Background and lighting

    /// A two-colour gradient, plus either coarse colour blotches or soft waves, so that no two backgrounds are
    /// alike and none is flat.
    mutating func paintBackground() {
        let W = width, H = height
        let c1 = SIMD3<Float>((0..<3).map { _ in Float(uniform(25, 230)) })
        var c2 = c1 + SIMD3<Float>((0..<3).map { _ in Float(uniform(-70, 70)) })
        c2 = clampColor(c2, 0, 255)
        let t = Float(uniform(0, 2 * .pi))
        let (nx, ny) = (cos(t), sin(t))
        let span = abs(nx) * Float(W) + abs(ny) * Float(H)
        let kind = rng.int(below: 3)
        // Blotches: random colour offsets on a coarse grid, interpolated bilinearly.
        let cell = Float(uniform(28, 90))
        let gw = Int(Float(W) / cell) + 2, gh = Int(Float(H) / cell) + 2
        let amp = Float(uniform(15, 40))
        var grid: [SIMD3<Float>] = []
        if kind == 1 {
            grid = (0..<(gw * gh)).map { _ in SIMD3<Float>((0..<3).map { _ in Float(uniform(-1, 1)) * amp }) }
        }
        // Waves: a soft sinusoid of the brightness.
        let period = Float(uniform(14, 60)), waveAmp = Float(uniform(8, 22))
        let w = Float(uniform(0, 2 * .pi))
        let (wx, wy) = (cos(w) * 2 * .pi / period, sin(w) * 2 * .pi / period)
        pixels.withUnsafeMutableBufferPointer { px in
            for y in 0..<H {
                let fy = Float(y)
                let gy = fy / cell, iy = Int(gy), ty = gy - Float(iy)
                for x in 0..<W {
                    let fx = Float(x)
                    let s = ((fx - Float(W) / 2) * nx + (fy - Float(H) / 2) * ny) / span + 0.5
                    var c = c1 + (c2 - c1) * s
                    if kind == 1 {
                        let gx = fx / cell, ix = Int(gx), tx = gx - Float(ix)
                        let a = grid[iy * gw + ix], b = grid[iy * gw + ix + 1]
                        let d = grid[(iy + 1) * gw + ix], e = grid[(iy + 1) * gw + ix + 1]
                        c += (a + (b - a) * tx) * (1 - ty) + (d + (e - d) * tx) * ty
                    } else if kind == 2 {
                        c += waveAmp * sin(fx * wx + fy * wy)
                    }
                    let q = clampColor(c, 0, 255)
                    let i = 3 * (y * W + x)
                    px[i] = UInt8(q.x); px[i + 1] = UInt8(q.y); px[i + 2] = UInt8(q.z)
                }
            }
        }
    }

    /// Uneven lighting over the whole picture (a brightness gradient and a slight colour cast) and sensor
    /// noise. Applied last, so objects are lit like their surroundings.
    mutating func applyLighting() {
        let W = width, H = height
        let level = Float(uniform(0.75, 1.15))
        let gx = Float(uniform(-0.4, 0.4)), gy = Float(uniform(-0.4, 0.4))
        let cast = SIMD3<Float>(Float(uniform(0.92, 1.08)), Float(uniform(0.92, 1.08)), Float(uniform(0.92, 1.08)))
        let noise = Float(uniform(0, 9))
        var rng = self.rng
        defer { self.rng = rng }
        pixels.withUnsafeMutableBufferPointer { px in
            for y in 0..<H {
                let rowLight = level + gy * (Float(y) / Float(H) - 0.5)
                for x in 0..<W {
                    let light = min(max(rowLight + gx * (Float(x) / Float(W) - 0.5), 0.55), 1.4)
                    let bits = rng.next()
                    let n =
                        SIMD3<Float>(Float(bits & 0xFF), Float((bits >> 8) & 0xFF), Float((bits >> 16) & 0xFF))
                        * (noise / 127.5) - noise
                    let i = 3 * (y * W + x)
                    let c = SIMD3<Float>(Float(px[i]), Float(px[i + 1]), Float(px[i + 2])) * (cast * light) + n
                    let q = clampColor(c, 0, 255)
                    px[i] = UInt8(q.x.rounded()); px[i + 1] = UInt8(q.y.rounded()); px[i + 2] = UInt8(q.z.rounded())
                }
            }
        }
    }
}

@inline(__always)
func clampColor(_ v: SIMD3<Float>, _ lo: Float, _ hi: Float) -> SIMD3<Float> {
    pointwiseMin(pointwiseMax(v, SIMD3(repeating: lo)), SIMD3(repeating: hi))
}
