import Foundation
import Detection
import FileSupport
#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Image ids of results written for a folder of images

/// The `image_id` that results for image files carry, so that the field's tools accept them:
/// - with COCO ground truth, the id of the ground-truth image whose `file_name` has the same base name;
/// - otherwise, a stem of digits (COCO's files are named after their zero-padded ids) becomes a number, and
///   any other stem stays a string (Pascal VOC names images by stem).
public enum ResultImageIDs {
    /// One id per file, in order. Throws, naming the files, when an image is not in the ground truth or when
    /// two files get the same id (`a.jpg` and `a.png`, or `7.jpg` and `007.jpg`).
    public static func ids(for files: [URL], groundTruth: COCOGroundTruth? = nil, groundTruthFile: String = "") throws
        -> [ImageID]
    {
        var ids: [ImageID] = []
        if let groundTruth {
            var byName: [String: [ImageID]] = [:]
            for (id, name) in groundTruth.fileNames {
                byName[COCOGroundTruth.baseName(of: name), default: []].append(id)
            }
            var missing: [String] = []
            for file in files {
                let found = byName[file.lastPathComponent] ?? []
                if found.count > 1 {
                    throw InputError(
                        file: groundTruthFile,
                        message: "\(found.count) images have the file name \(file.lastPathComponent) "
                            + "(ids \(found.sorted().map(\.description).joined(separator: ", "))); cannot tell which "
                              + "one \(file.path) is"
                    )
                }
                if let id = found.first { ids.append(id) } else { missing.append(file.path) }
            }
            if !missing.isEmpty {
                let shown = missing.prefix(3).joined(separator: ", ") + (missing.count > 3 ? ", ..." : "")
                throw InputError(
                    file: groundTruthFile,
                    message: "\(missing.count) of the \(files.count) images are not in the ground truth "
                        + "(no image has their file_name): \(shown)")
            }
        } else {
            ids = files.map { id(forStem: $0.deletingPathExtension().lastPathComponent) }
        }
        var first: [ImageID: URL] = [:]
        for (file, id) in zip(files, ids) {
            if let other = first[id] {
                throw InputError(
                    file: file.path,
                    message: "gets the same image_id \(id) as \(other.path); results could not tell "
                        + "them apart: rename one, or give them in separate runs")
            }
            first[id] = file
        }
        return ids
    }

    /// A number for a stem of digits (at most 18, so it fits), else the stem.
    public static func id(forStem stem: String) -> ImageID {
        if !stem.isEmpty, stem.utf8.count <= 18, stem.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(stem) {
            return .number(n)
        }
        return .name(stem)
    }
}

extension ImageID {
    /// The value for a JSON results file (a number or a string).
    public var jsonValue: Any {
        switch self {
        case .number(let n): return n
        case .name(let s): return s
        }
    }

    /// The id as VOC result files write it: the number's digits or the name, unquoted.
    public var plainText: String {
        switch self {
        case .number(let n): return String(n)
        case .name(let s): return s
        }
    }
}

// MARK: - Pascal VOC devkit result files

/// Pascal VOC devkit / py-faster-rcnn result files: one `<prefix>_det_<split>_<class>.txt` per class, a line
/// per detection, `<image id> <score> <x1> <y1> <x2> <y2>`, as the VOC evaluation server and `voc_eval` read
/// them.
///
/// Coordinates are written in the frame this project trains and evaluates in: the annotation files' own
/// (1-based) pixel coordinates, used as they are, so `voc_eval` on these files gives the same AP as
/// `evaluate`. (py-faster-rcnn adds 1 because it subtracts 1 when it reads the annotations; this project does
/// neither.) Numbers are written with every digit (the shortest text that reads back to the same double), so
/// nothing is rounded between the two.
public enum VOCResultFiles {
    /// One detection: image name (VOC id), 0-based class index into the class list, score, corners.
    public struct Entry: Sendable {
        public var image: String
        public var classIndex: Int
        public var score: Double
        public var box: BoxCorners
        public init(image: String, classIndex: Int, score: Double, box: BoxCorners) {
            self.image = image
            self.classIndex = classIndex
            self.score = score
            self.box = box
        }
    }

    /// The file of class `name`. Throws for names that cannot be part of a file name.
    public static func fileName(prefix: String = "comp4", split: String, className name: String) throws -> String {
        guard !name.isEmpty, !name.contains("/"), !name.contains("\0"), name != ".", name != ".." else {
            throw InputError(file: name, message: "a class name that cannot be part of a file name")
        }
        return "\(prefix)_det_\(split)_\(name).txt"
    }

    /// Checks, before any long work, that `folder` exists or can be made and that files can be written in it.
    public static func prepare(folder: URL, split: String, classNames: [String]) throws {
        guard !split.isEmpty, !split.contains("/") else {
            throw InputError(file: split, message: "not a usable split name")
        }
        for name in classNames { _ = try fileName(split: split, className: name) }
        try OutputFolder.prepare(folder, what: "VOC results folder")
    }

    /// Writes one file per class (every class, an empty file for classes without detections), each
    /// atomically; returns the files written.
    @discardableResult
    public static func write(
        _ entries: [Entry], classNames: [String], split: String, to folder: URL,
        prefix: String = "comp4"
    ) throws -> [URL] {
        try prepare(folder: folder, split: split, classNames: classNames)
        var lines = [String](repeating: "", count: classNames.count)
        for e in entries {
            guard e.classIndex >= 0 && e.classIndex < classNames.count else {
                throw InputError(
                    file: folder.path,
                    message: "detection of class index \(e.classIndex) outside the \(classNames.count) classes")
            }
            guard !e.image.contains(where: { $0 == " " || $0 == "\n" || $0 == "\t" }) else {
                throw InputError(
                    file: folder.path,
                    message: "image id \"\(e.image)\" holds white space, which VOC result files cannot carry")
            }
            lines[e.classIndex] += "\(e.image) \(e.score) \(e.box.xmin) \(e.box.ymin) \(e.box.xmax) \(e.box.ymax)\n"
        }
        var written: [URL] = []
        for (k, name) in classNames.enumerated() {
            let url = folder.appendingPathComponent(try fileName(prefix: prefix, split: split, className: name))
            try AtomicFile.write(lines[k], to: url, createFolder: true)
            written.append(url)
        }
        return written
    }
}

// MARK: - Output locations checked before long work

public enum OutputFolder {
    /// Makes `folder` if missing and checks that a file can be created in it; throws naming the folder.
    public static func prepare(_ folder: URL, what: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw InputError(file: folder.path, message: "\(what): exists and is not a folder")
            }
        } else {
            do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
                throw InputError(
                    file: folder.path, message: "\(what): cannot create it (\((error as NSError).localizedDescription))"
                )
            }
        }
        guard access(folder.path, W_OK | X_OK) == 0 else {
            throw InputError(
                file: folder.path, message: "\(what): cannot write files in it (\(String(cString: strerror(errno))))")
        }
    }

    /// Checks that `file` can be written later: its folder exists (or is made) and is writable, and the file
    /// itself, if present, is a regular file.
    public static func prepare(file: URL, what: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: file.path, isDirectory: &isDir), isDir.boolValue {
            throw InputError(file: file.path, message: "\(what): is a folder, expected a file name")
        }
        do { try AtomicFile.checkReplaceable(file) } catch let e as AtomicWriteError {
            throw InputError(file: file.path, message: "\(what): \(e.message)")
        }
        try prepare(file.deletingLastPathComponent(), what: "folder of the \(what)")
    }
}
