import Foundation
import Detection

// MARK: - Names of images and categories

/// How a data set names an image: COCO uses numbers, Pascal VOC the file stem (`"000001"`).
public enum ImageID: Hashable, Comparable, CustomStringConvertible, Sendable {
    case number(Int)
    case name(String)

    public var description: String {
        switch self {
        case .number(let n): return String(n)
        case .name(let s): return "\"\(s)\""
        }
    }

    /// Numbers in numeric order (pycocotools sorts its image ids), then names in byte order.
    public static func < (a: ImageID, b: ImageID) -> Bool {
        switch (a, b) {
        case let (.number(x), .number(y)): return x < y
        case (.number, .name): return true
        case (.name, .number): return false
        case let (.name(x), .name(y)): return Array(x.utf8).lexicographicallyPrecedes(y.utf8)
        }
    }
}

public struct Category: Hashable, Sendable {
    public var id: Int
    public var name: String
    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }
}

/// What detections are resolved against: the images and categories of one ground truth, with lookups.
/// Indices (not ids) are what the evaluators work with.
public struct DatasetIndex: Sendable {
    public let images: [ImageID]
    public let categories: [Category]
    let imageLookup: [ImageID: Int]
    let categoryLookup: [Int: Int]
    let nameLookup: [String: Int]

    /// Other names of images: a COCO image's file stem ("000000000130" for 000000000130.jpg), a VOC stem of
    /// digits as a number (2229 for "002229"), each naming exactly one image.
    let aliases: [ImageID: Int]
    /// Other names that fit several images, with how many (an error to use them).
    let ambiguousAliases: [ImageID: Int]

    /// `aliases`: for each image (same order as `images`), other names detections may use for it; a name that
    /// is an image id itself, or that several images share, never resolves through an alias.
    public init(images: [ImageID], categories: [Category], aliases: [[ImageID]] = []) {
        self.images = images
        self.categories = categories
        var imageLookup = [ImageID: Int](minimumCapacity: images.count)
        for (i, id) in images.enumerated() where imageLookup[id] == nil { imageLookup[id] = i }
        self.imageLookup = imageLookup
        var aliasLookup = [ImageID: Int](), counts = [ImageID: Int]()
        for (i, names) in aliases.enumerated() where i < images.count {
            for name in Set(names) where imageLookup[name] == nil {
                counts[name, default: 0] += 1
                aliasLookup[name] = i
            }
        }
        self.ambiguousAliases = counts.filter { $0.value > 1 }
        self.aliases = aliasLookup.filter { counts[$0.key] == 1 }
        var categoryLookup = [Int: Int](), nameLookup = [String: Int]()
        for (k, c) in categories.enumerated() {
            if categoryLookup[c.id] == nil { categoryLookup[c.id] = k }
            if nameLookup[c.name] == nil { nameLookup[c.name] = k }
        }
        self.categoryLookup = categoryLookup
        self.nameLookup = nameLookup
    }

    public func imageIndex(_ id: ImageID) -> Int? { imageLookup[id] }

    /// The image `id` names: an image id, else an alias naming exactly one image (`viaAlias` true).
    /// Throws `AmbiguousImageName` when several images share the alias.
    public func resolveImage(_ id: ImageID) throws -> (index: Int, viaAlias: Bool)? {
        if let i = imageLookup[id] { return (i, false) }
        if let i = aliases[id] { return (i, true) }
        if let n = ambiguousAliases[id] { throw AmbiguousImageName(id: id, count: n) }
        return nil
    }

    /// Numbers for the stems of digits (the way COCO names its files after zero-padded ids), for ground truth
    /// that names images by stem.
    public static func numericAliases(ofStems stems: [String]) -> [[ImageID]] {
        stems.map { stem in
            if case .number(let n) = ResultImageIDs.id(forStem: stem) { return [.number(n)] }
            return []
        }
    }
}

/// An image name in detections that fits several ground-truth images (two files with the same stem).
public struct AmbiguousImageName: Error, CustomStringConvertible {
    public var id: ImageID
    public var count: Int
    public var description: String {
        "image_id \(id) names \(count) images of the ground truth (by file name or number); give the ground truth's "
        + "image id"
    }
}

extension DatasetIndex {
    public func categoryIndex(id: Int) -> Int? { categoryLookup[id] }
    public func categoryIndex(name: String) -> Int? { nameLookup[name] }
}

// MARK: - Ground truth (COCO instances JSON)

/// One ground-truth object, its image and category given as indices into the ground truth's lists.
public struct GroundTruthObject: Equatable, Sendable {
    public var id: Int
    public var imageIndex: Int
    public var categoryIndex: Int
    public var box: BoxXYWH
    /// COCO takes the area from the annotation (the segment's area), not from the box.
    public var area: Double
    /// A crowd region: ignored, matched by intersection over detection area, may absorb many detections.
    public var isCrowd: Bool
    /// An ignored object that is not a crowd (VOC's `difficult` when VOC ground truth is evaluated with COCO
    /// semantics). COCO files' own `ignore` field is not used: pycocotools overwrites it with `iscrowd`.
    public var isIgnored: Bool

    public init(
        id: Int, imageIndex: Int, categoryIndex: Int, box: BoxXYWH, area: Double? = nil,
        isCrowd: Bool = false, isIgnored: Bool = false
    ) {
        self.id = id
        self.imageIndex = imageIndex
        self.categoryIndex = categoryIndex
        self.box = box
        self.area = area ?? box.area
        self.isCrowd = isCrowd
        self.isIgnored = isIgnored
    }
}

/// COCO-style ground truth: the evaluated images (in evaluation order), categories (sorted by id, as
/// pycocotools does) and objects in file order.
public struct COCOGroundTruth: Sendable {
    public var images: [ImageID]
    public var categories: [Category]
    public var objects: [GroundTruthObject]
    /// Things the loader let pass but the user should hear about (annotations on unlisted images, ...).
    public var warnings: [String]
    /// Each image's `file_name` as the file gives it (images without one are absent).
    public var fileNames: [ImageID: String]

    public init(
        images: [ImageID], categories: [Category], objects: [GroundTruthObject], warnings: [String] = [],
        fileNames: [ImageID: String] = [:]
    ) {
        self.images = images
        self.categories = categories
        self.objects = objects
        self.warnings = warnings
        self.fileNames = fileNames
    }

    /// Detections may also name an image by the stem of its `file_name` (what `detect` writes without
    /// `--gt`) when exactly one image has that stem.
    public var index: DatasetIndex {
        DatasetIndex(
            images: images, categories: categories,
            aliases: images.map { id in
                guard let name = fileNames[id] else { return [] }
                let stem = Self.stem(of: name)
                return stem.isEmpty ? [] : [.name(stem)]
            })
    }

    /// "a/b/000000000130.jpg" -> "000000000130.jpg" (file_name may hold folders).
    public static func baseName(of fileName: String) -> String {
        fileName.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? fileName
    }

    /// "a/b/000000000130.jpg" -> "000000000130".
    public static func stem(of fileName: String) -> String {
        let base = baseName(of: fileName)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return base }
        return String(base[..<dot])
    }

    public static func load(_ url: URL) throws -> COCOGroundTruth {
        try parse(readFile(url, what: "ground-truth file"), file: url.path)
    }

    /// Parses a COCO instances file (`images`, `categories`, `annotations`; other keys are skipped).
    ///
    /// Follows pycocotools: images are evaluated in sorted id order, categories in sorted id order,
    /// annotations on images or categories the file does not list are left out (with a warning), a missing
    /// `area` is taken from the box, a missing `iscrowd` is 0.
    public static func parse(_ data: Data, file: String) throws -> COCOGroundTruth {
        struct RawAnnotation {
            var id: Int?, image: ImageID?, category: Int?, box: BoxXYWH?, area: Double?, crowd = false
            var offset: Int
        }
        var images: [ImageID]?
        var categories: [Category]?
        var raw: [RawAnnotation] = []
        var fileNames: [ImageID: String] = [:]
        try JSONReader.withReader(data, file: file) { r in
            if r.atEnd() { throw r.error("the file is empty, expected a COCO ground-truth object") }
            guard try r.peekKind() == .object else {
                throw r.error(
                    "expected a COCO ground-truth object ({\"images\": ..., \"annotations\": ..., \"categories\": ...})"
                )
            }
            try r.readObject { r, key in
                switch key {
                case "images":
                    var list: [ImageID] = []
                    try r.readArray { r, i in
                        r.skipWhitespace()
                        let at = r.pos
                        var id: ImageID?, fileName: String?
                        try r.readObject { r, key in
                            switch key {
                            case "id": id = try readImageID(&r, what: "image id")
                            case "file_name":
                                if try r.peekKind() == .string {
                                    fileName = try r.readString()
                                } else {
                                    try r.skipValue()
                                }
                            default: try r.skipValue()
                            }
                        }
                        guard let id else { throw r.error("image \(i) has no \"id\"", at: at) }
                        list.append(id)
                        if let fileName, fileNames[id] == nil { fileNames[id] = fileName }
                    }
                    images = list
                case "categories":
                    var list: [Category] = []
                    try r.readArray { r, i in
                        r.skipWhitespace()
                        let at = r.pos
                        var id: Int?, name: String?
                        try r.readObject { r, key in
                            switch key {
                            case "id": id = try r.readInteger("category id")
                            case "name": name = try r.readString()
                            default: try r.skipValue()
                            }
                        }
                        guard let id else { throw r.error("category \(i) has no \"id\"", at: at) }
                        list.append(Category(id: id, name: name ?? String(id)))
                    }
                    categories = list
                case "annotations":
                    try r.readArray { r, n in
                        try numbered("annotation \(n)") {
                            r.skipWhitespace()
                            var a = RawAnnotation(offset: r.pos)
                            try r.readObject { r, key in
                                switch key {
                                case "id": a.id = try r.readInteger("annotation id")
                                case "image_id": a.image = try readImageID(&r, what: "image_id")
                                case "category_id": a.category = try r.readInteger("category_id")
                                case "bbox": a.box = try readBox(&r)
                                case "area":
                                    let at = r.pos
                                    let area = try r.readNumber()
                                    guard area.isFinite else {
                                        throw r.error("area must be a finite number, found \(area)", at: at)
                                    }
                                    a.area = area
                                case "iscrowd":
                                    a.crowd = try r.peekKind() == .bool ? r.readBool() : r.readInteger("iscrowd") != 0
                                default: try r.skipValue()
                                }
                            }
                            raw.append(a)
                        }
                    }
                default:
                    try r.skipValue()
                }
            }
            try r.expectEnd()
        }
        guard let images else {
            throw InputError(file: file, message: "no \"images\" list: this is not a COCO ground-truth file")
        }
        guard let categories else {
            throw InputError(file: file, message: "no \"categories\" list: this is not a COCO ground-truth file")
        }

        // Duplicate ids make the file ambiguous (pycocotools silently keeps the last one): refuse them.
        func firstDuplicate<T: Hashable>(_ values: [T]) -> T? {
            var seen = Set<T>()
            return values.first { !seen.insert($0).inserted }
        }
        if let dup = firstDuplicate(images) {
            throw InputError(file: file, message: "image id \(dup) is listed twice in \"images\"")
        }
        if let dup = firstDuplicate(categories.map(\.id)) {
            throw InputError(file: file, message: "category id \(dup) is listed twice in \"categories\"")
        }
        if let dup = firstDuplicate(categories.map(\.name)) {
            throw InputError(file: file, message: "category name \"\(dup)\" is listed twice in \"categories\"")
        }
        if let dup = firstDuplicate(raw.compactMap(\.id)) {
            throw InputError(file: file, message: "annotation id \(dup) is used twice")
        }
        let sortedImages = images.sorted()
        let sortedCategories = categories.sorted { $0.id < $1.id }
        let index = DatasetIndex(images: sortedImages, categories: sortedCategories)
        var objects: [GroundTruthObject] = []
        objects.reserveCapacity(raw.count)
        var unlistedImage = 0, unlistedCategory = 0, zeroID = 0
        for (n, a) in raw.enumerated() {
            func fail(_ message: String) -> InputError {
                JSONReader.withLocation(data, file: file, offset: a.offset, message: "annotation \(n): " + message)
            }
            guard let image = a.image else { throw fail("no \"image_id\"") }
            guard let category = a.category else { throw fail("no \"category_id\"") }
            guard let box = a.box else { throw fail("no \"bbox\"") }
            guard let imageIndex = index.imageIndex(image) else { unlistedImage += 1; continue }
            guard let categoryIndex = index.categoryIndex(id: category) else { unlistedCategory += 1; continue }
            let id = a.id ?? (n + 1)
            if id == 0 { zeroID += 1 }
            objects.append(
                GroundTruthObject(
                    id: id, imageIndex: imageIndex, categoryIndex: categoryIndex,
                    box: box, area: a.area, isCrowd: a.crowd))
        }
        var warnings: [String] = []
        if unlistedImage > 0 {
            warnings.append(
                "\(file): \(unlistedImage) annotation(s) on images not in \"images\" were left out (as pycocotools "
                + "does)"
            )
        }
        if unlistedCategory > 0 {
            warnings.append(
                "\(file): \(unlistedCategory) annotation(s) of categories not in \"categories\" were left out (as "
                + "pycocotools does)"
            )
        }
        if zeroID > 0 {
            warnings.append(
                "\(file): \(zeroID) annotation(s) have id 0; pycocotools counts detections matched to them as false "
                + "positives (it uses 0 for \"unmatched\"), this evaluator does not, so numbers can differ"
            )
        }
        return COCOGroundTruth(
            images: sortedImages, categories: sortedCategories, objects: objects, warnings: warnings,
            fileNames: fileNames)
    }
}

// MARK: - Detections (COCO results JSON)

/// One detection, resolved against a ground truth: image and category are indices into its lists.
public struct Detection: Equatable, Sendable {
    public var imageIndex: Int32
    public var categoryIndex: Int32
    public var box: BoxXYWH
    public var score: Double

    public init(imageIndex: Int, categoryIndex: Int, box: BoxXYWH, score: Double) {
        self.imageIndex = Int32(imageIndex)
        self.categoryIndex = Int32(categoryIndex)
        self.box = box
        self.score = score
    }
}

/// What to do with detections naming an image or category the ground truth does not have.
public enum UnknownIDPolicy: Sendable {
    /// Stop with an error naming the detection (default: such files usually belong to another split).
    case reject
    /// Leave them out and count them (evaluating on a subset of the images the detector ran on).
    case drop
}

public struct DetectionList: Sendable {
    /// In file order (ties in score are broken by this order, as in pycocotools).
    public var detections: [Detection]
    /// Detections left out under `UnknownIDPolicy.drop`.
    public var dropped: Int
    public var file: String
    /// Detections whose image_id named their image by another name (a file stem, a number for a stem of
    /// digits) than the ground truth's id.
    public var aliased: Int = 0
}

/// Reads COCO results files: `[{"image_id": .., "category_id": .. | "category_name": .., "bbox": [x, y, w, h],
/// "score": ..}, ...]`. Other keys (segmentation, ...) are skipped. A file holding only whitespace is an
/// empty list.
public enum DetectionsFile {
    public static func load(_ url: URL, index: DatasetIndex, unknown: UnknownIDPolicy = .reject) throws -> DetectionList
    {
        try parse(readFile(url, what: "detections file"), file: url.path, index: index, unknown: unknown)
    }

    public static func parse(
        _ data: Data, file: String, index: DatasetIndex,
        unknown: UnknownIDPolicy = .reject
    ) throws -> DetectionList {
        var detections: [Detection] = []
        detections.reserveCapacity(data.count / 90)
        var dropped = 0, aliased = 0
        try JSONReader.withReader(data, file: file) { r in
            if r.atEnd() { return }
            guard try r.peekKind() == .array else {
                throw r.error(
                    "expected a list of detections ([{\"image_id\": .., \"category_id\": .., \"bbox\": [x, y, w, h], "
                    + "\"score\": ..}, ...])"
                )
            }
            try r.readArray { r, n in
                try numbered("detection \(n)") {
                    r.skipWhitespace()
                    let at = r.pos
                    guard try r.peekKind() == .object else { throw r.error("expected an object") }
                    var image: ImageID?, categoryID: Int?, categoryName: String?, box: BoxXYWH?, score: Double?
                    var scoreAt = 0
                    try r.readObject { r, key in
                        switch key {
                        case "image_id": image = try readImageID(&r, what: "image_id")
                        case "category_id": categoryID = try r.readInteger("category_id")
                        case "category_name": categoryName = try r.readString()
                        case "bbox": box = try readBox(&r)
                        case "score":
                            r.skipWhitespace()
                            scoreAt = r.pos
                            score = try r.readNumber()
                        default: try r.skipValue()
                        }
                    }
                    func fail(_ message: String, _ offset: Int = at) -> InputError { r.error(message, at: offset) }
                    guard let image else { throw fail("no \"image_id\"") }
                    guard let box else { throw fail("no \"bbox\"") }
                    guard let score else { throw fail("no \"score\"") }
                    guard score.isFinite else {
                        throw fail(
                            "score is \(score.isNaN ? "NaN" : score > 0 ? "Infinity" : "-Infinity"), scores must be "
                            + "finite numbers",
                            scoreAt)
                    }

                    let resolved: (index: Int, viaAlias: Bool)?
                    do { resolved = try index.resolveImage(image) } catch let e as AmbiguousImageName {
                        throw fail(e.description)
                    }
                    guard let resolved else {
                        if unknown == .drop { dropped += 1; return }
                        throw fail("image_id \(image) is not an image of the ground truth" + imageHint(image, index))
                    }
                    let imageIndex = resolved.index
                    if resolved.viaAlias { aliased += 1 }
                    let categoryIndex: Int
                    if let categoryID {
                        guard let k = index.categoryIndex(id: categoryID) else {
                            if unknown == .drop { dropped += 1; return }
                            throw fail(
                                "category_id \(categoryID) is not a category of the ground truth" + categoryHint(index))
                        }
                        if let categoryName, index.categories[k].name != categoryName {
                            throw fail(
                                "category_id \(categoryID) is \"\(index.categories[k].name)\" but category_name says "
                                + "\"\(categoryName)\""
                            )
                        }
                        categoryIndex = k
                    } else if let categoryName {
                        guard let k = index.categoryIndex(name: categoryName) else {
                            if unknown == .drop { dropped += 1; return }
                            throw fail(
                                "category_name \"\(categoryName)\" is not a category of the ground truth"
                                    + categoryHint(index))
                        }
                        categoryIndex = k
                    } else {
                        throw fail("no \"category_id\" or \"category_name\"")
                    }
                    detections.append(
                        Detection(imageIndex: imageIndex, categoryIndex: categoryIndex, box: box, score: score))
                }
            }
            try r.expectEnd()
        }
        return DetectionList(detections: detections, dropped: dropped, file: file, aliased: aliased)
    }

    private static func imageHint(_ image: ImageID, _ index: DatasetIndex) -> String {
        guard let first = index.images.first else { return " (the ground truth has no images)" }
        switch (image, first) {
        case (.number(let n), .name):
            return " (this ground truth names images by their file stem as a string, e.g. \(first); \(n) is a number)"
        case (.name(let s), .number):
            return " (this ground truth numbers its images, e.g. \(first); \"\(s)\" is a string)"
        default:
            return " (\(index.images.count) images, e.g. \(first))"
        }
    }

    private static func categoryHint(_ index: DatasetIndex) -> String {
        let shown = index.categories.prefix(5).map { "\($0.id) \"\($0.name)\"" }.joined(separator: ", ")
        return " (\(index.categories.count) categories: \(shown)\(index.categories.count > 5 ? ", ..." : ""))"
    }
}

// MARK: - Shared field readers

/// Runs `body`, prefixing the message of an `InputError` it throws with `label` ("detection 12: ...").
/// The label is built only when there is an error.
func numbered<T>(_ label: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch var error as InputError {
        error.message = "\(label()): " + error.message
        throw error
    }
}

/// An image id: a number (COCO) or a string (VOC file stem).
func readImageID(_ r: inout JSONReader, what: String) throws -> ImageID {
    switch try r.peekKind() {
    case .string: return .name(try r.readString())
    case .number: return .number(try r.readInteger(what))
    default: throw r.error("\(what) must be a number or a string")
    }
}

/// `[x, y, w, h]`: four finite numbers, width and height not negative.
func readBox(_ r: inout JSONReader) throws -> BoxXYWH {
    r.skipWhitespace()
    let at = r.pos
    guard try r.peekKind() == .array else { throw r.error("bbox must be a list [x, y, w, h]") }
    var v: (Double, Double, Double, Double) = (0, 0, 0, 0)  // a tuple: no allocation per box
    var count = 0
    try r.readArray { r, i in
        r.skipWhitespace()
        let numberAt = r.pos
        guard try r.peekKind() == .number else { throw r.error("bbox must hold numbers") }
        let x = try r.readNumber()
        guard x.isFinite else { throw r.error("bbox holds \(x), coordinates must be finite", at: numberAt) }
        switch i {
        case 0: v.0 = x
        case 1: v.1 = x
        case 2: v.2 = x
        case 3: v.3 = x
        default: break
        }
        count += 1
    }
    guard count == 4 else { throw r.error("bbox must have 4 numbers [x, y, w, h], found \(count)", at: at) }
    guard v.2 >= 0, v.3 >= 0 else {
        throw r.error("bbox [\(v.0), \(v.1), \(v.2), \(v.3)] has a negative width or height", at: at)
    }
    return BoxXYWH(x: v.0, y: v.1, width: v.2, height: v.3)
}

extension JSONReader {
    /// An error at `offset` of `data` (for problems found after parsing, such as an annotation naming an
    /// unknown image).
    static func withLocation(_ data: Data, file: String, offset: Int, message: String) -> InputError {
        data.withUnsafeBytes { raw in
            JSONReader(bytes: raw.bindMemory(to: UInt8.self), file: file).error(message, at: offset)
        }
    }
}
