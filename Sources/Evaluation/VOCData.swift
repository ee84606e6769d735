import Foundation
import Detection
#if canImport(FoundationXML)
    import FoundationXML
#endif

/// One object of a Pascal VOC annotation file.
public struct VOCObject: Equatable, Sendable {
    public var name: String
    public var box: BoxCorners
    public var difficult: Bool
    public init(name: String, box: BoxCorners, difficult: Bool = false) {
        self.name = name
        self.box = box
        self.difficult = difficult
    }
}

/// A ground-truth object with its image and class as indices into the ground truth's lists.
public struct VOCGroundTruthObject: Equatable, Sendable {
    public var imageIndex: Int
    public var classIndex: Int
    public var box: BoxCorners
    public var difficult: Bool
    public init(imageIndex: Int, classIndex: Int, box: BoxCorners, difficult: Bool) {
        self.imageIndex = imageIndex
        self.classIndex = classIndex
        self.box = box
        self.difficult = difficult
    }
}

/// Pascal VOC ground truth for one image set: image ids (file stems, in split order), class names, and
/// objects. Detections name images by stem and classes by 1-based index in `classNames` (or by name).
public struct VOCGroundTruth: Sendable {
    public var imageIDs: [String]
    public var classNames: [String]
    public var objects: [VOCGroundTruthObject]
    public var warnings: [String]
    /// A label such as "VOC2007 test", for reports.
    public var name: String
    /// Objects left out because their class is not in the class list, by name (a misspelt name in the
    /// annotations when the list is given): a warning for evaluation, an error for training.
    public var unknownClasses: [String: Int] = [:]

    /// The 20 classes in their usual order (the order of py-faster-rcnn and torchvision).
    public static let standardClasses = [
        "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"
    ]

    public init(
        imageIDs: [String], classNames: [String], objects: [VOCGroundTruthObject],
        warnings: [String] = [], name: String = "VOC"
    ) {
        self.imageIDs = imageIDs
        self.classNames = classNames
        self.objects = objects
        self.warnings = warnings
        self.name = name
    }

    /// Detections may also name an image whose stem is all digits by that number (2229 for "002229", as
    /// `detect` writes ids of such files) when no other stem has the same number.
    public var index: DatasetIndex {
        DatasetIndex(
            images: imageIDs.map { .name($0) },
            categories: classNames.enumerated().map { Category(id: $0.offset + 1, name: $0.element) },
            aliases: DatasetIndex.numericAliases(ofStems: imageIDs))
    }

    /// The image of `id`: `<devkit>/JPEGImages/<id>.jpg`, or the `.png` of that name when there is no `.jpg`
    /// (which may not exist either).
    public static func imageFile(devkit: URL, id: String) -> URL {
        let jpg = devkit.appendingPathComponent("JPEGImages/\(id).jpg")
        return FileManager.default.fileExists(atPath: jpg.path)
            ? jpg : devkit.appendingPathComponent("JPEGImages/\(id).png")
    }

    /// Loads `<devkit>/ImageSets/Main/<split>.txt` and `<devkit>/Annotations/<id>.xml` for each listed id.
    /// The class list is `classNames` when given (objects of other classes are left out, with a warning);
    /// otherwise the standard 20 classes when every name found is one of them, else the sorted names found.
    public static func load(devkit: URL, split: String, classNames: [String]? = nil) throws -> VOCGroundTruth {
        let splitFile = devkit.appendingPathComponent("ImageSets/Main/\(split).txt")
        guard FileManager.default.fileExists(atPath: splitFile.path) else {
            let folder = devkit.appendingPathComponent("ImageSets/Main")
            let splits = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
                .filter { $0.hasSuffix(".txt") && !$0.contains("_") }.map { String($0.dropLast(4)) }.sorted()
            let hint =
                splits.isEmpty
                ? "is \(devkit.path) a VOCdevkit/VOC20xx folder?" : "splits here: \(splits.joined(separator: ", "))"
            throw InputError(file: splitFile.path, message: "image set \"\(split)\" not found (\(hint))")
        }
        let ids = parseImageSet(try readFile(splitFile, what: "image set"))
        var perImage: [[VOCObject]] = []
        perImage.reserveCapacity(ids.count)
        for id in ids {
            let file = devkit.appendingPathComponent("Annotations/\(id).xml")
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw InputError(
                    file: file.path,
                    message: "annotation for image \"\(id)\" (listed in \(splitFile.lastPathComponent)) not found")
            }
            perImage.append(try parseAnnotation(readFile(file, what: "annotation file"), file: file.path))
        }

        let found = Set(perImage.joined().map(\.name))
        let classes = classNames ?? (found.isSubset(of: standardClasses) ? standardClasses : found.sorted())
        var classIndex = [String: Int]()
        for (k, name) in classes.enumerated() { classIndex[name] = k }
        var objects: [VOCGroundTruthObject] = []
        var skipped: [String: Int] = [:]
        for (i, list) in perImage.enumerated() {
            for o in list {
                guard let k = classIndex[o.name] else { skipped[o.name, default: 0] += 1; continue }
                objects.append(VOCGroundTruthObject(imageIndex: i, classIndex: k, box: o.box, difficult: o.difficult))
            }
        }
        var warnings: [String] = []
        if !skipped.isEmpty {
            let list = skipped.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            warnings.append("objects of classes not in the class list were left out: \(list)")
        }
        var gt = VOCGroundTruth(
            imageIDs: ids, classNames: classes, objects: objects, warnings: warnings,
            name: "\(devkit.standardizedFileURL.lastPathComponent) \(split)")
        gt.unknownClasses = skipped
        return gt
    }

    /// Image ids of an image-set file: the first word of each non-empty line (class-specific sets such as
    /// `aeroplane_test.txt` carry a second column).
    public static func parseImageSet(_ data: Data) -> [String] {
        String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).compactMap { line in
            line.split(whereSeparator: \.isWhitespace).first.map(String.init)
        }
    }

    /// A class list file: one name per line; blank lines and lines starting with '#' are skipped.
    public static func loadClassList(_ url: URL) throws -> [String] {
        let text = String(decoding: try readFile(url, what: "class list"), as: UTF8.self)
        var names: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let name = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if name.isEmpty || name.hasPrefix("#") { continue }
            if names.contains(name) {
                throw InputError(file: url.path, line: n + 1, column: 1, message: "class \"\(name)\" is listed twice")
            }
            names.append(name)
        }
        if names.isEmpty { throw InputError(file: url.path, message: "the class list is empty") }
        return names
    }

    /// Parses one VOC annotation XML: each `object`'s `name`, `difficult` (0 when absent) and
    /// `bndbox/{xmin,ymin,xmax,ymax}`. Body parts (`object/part`) are not objects and are skipped.
    public static func parseAnnotation(_ data: Data, file: String) throws -> [VOCObject] {
        guard data.contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) else {
            throw InputError(
                file: file,
                message: data.isEmpty
                    ? "empty annotation file (0 bytes): an image without objects still needs "
                        + "<annotation></annotation>" : "annotation file holds only white space")
        }
        let delegate = AnnotationParser(file: file)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        let ok = parser.parse()
        if let problem = delegate.problem { throw problem }
        guard ok else {
            let code = parser.parserError.map { " (libxml2 error \(($0 as NSError).code))" } ?? ""
            throw InputError(
                file: file, line: parser.lineNumber, column: parser.columnNumber, message: "malformed XML\(code)")
        }
        return delegate.objects
    }
}

/// Collects objects while XMLParser walks the tree; element paths are matched exactly so that `part`
/// boxes inside an object are not taken for the object's own.
private final class AnnotationParser: NSObject, XMLParserDelegate {
    let file: String
    var objects: [VOCObject] = []
    var problem: InputError?
    private var path: [String] = []
    private var text = ""
    private var name: String?
    private var difficult = false
    private var corners: [String: Double] = [:]
    private var objectLine = 0

    init(file: String) { self.file = file }

    func parser(
        _ parser: XMLParser, didStartElement element: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        path.append(element)
        text = ""
        if path.count == 2 && element == "object" {
            name = nil
            difficult = false
            corners = [:]
            objectLine = parser.lineNumber
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        defer { path.removeLast(); text = "" }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch (path.count, element) {
        case (3, "name") where path[1] == "object":
            name = value
        case (3, "difficult") where path[1] == "object":
            difficult = (Int(value) ?? 0) != 0
        case (4, "xmin"), (4, "ymin"), (4, "xmax"), (4, "ymax"):
            guard path[1] == "object" && path[2] == "bndbox" else { break }
            guard let v = Double(value), v.isFinite else {
                fail(parser, "bndbox \(element) is \"\(value)\", expected a number")
                return
            }
            corners[element] = v
        case (2, "object"):
            guard let name, !name.isEmpty else {
                fail(parser, "object \(objects.count + 1) (line \(objectLine)) has no name"); return
            }
            guard let xmin = corners["xmin"], let ymin = corners["ymin"], let xmax = corners["xmax"],
                let ymax = corners["ymax"]
            else {
                fail(
                    parser,
                    "object \(objects.count + 1) \"\(name)\" (line \(objectLine)) has no complete bndbox (xmin, ymin, "
                    + "xmax, ymax)"
                )
                return
            }
            objects.append(
                VOCObject(
                    name: name, box: BoxCorners(xmin: xmin, ymin: ymin, xmax: xmax, ymax: ymax), difficult: difficult))
        default:
            break
        }
    }

    /// XMLParser (libxml2) may recover and keep reporting elements after an error; the first error wins.
    /// Foundation's descriptions of libxml2 errors are opaque ("The operation could not be completed"), so
    /// the message gives the position and libxml2's error number.
    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        fail(parser, "malformed XML (libxml2 error \((parseError as NSError).code))")
    }

    private func fail(_ parser: XMLParser, _ message: String) {
        if problem == nil {
            problem = InputError(file: file, line: parser.lineNumber, column: parser.columnNumber, message: message)
        }
        parser.abortParsing()
    }
}
