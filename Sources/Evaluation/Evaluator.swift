import Foundation
import Detection

/// Which numbers to compute.
public enum Metric: String, CaseIterable, Sendable {
    /// Pascal VOC, 11-point AP (VOC2007).
    case voc07
    /// Pascal VOC, area AP (VOC2010 and later).
    case voc
    /// COCO: the 12 numbers of pycocotools' COCOeval.
    case coco
}

/// Ground truth of either kind, as the command line names it: a VOCdevkit/VOC20xx folder or a COCO
/// instances JSON file.
public enum GroundTruth: Sendable {
    case voc(VOCGroundTruth)
    case coco(COCOGroundTruth)

    /// A folder is read as VOC (`split` and `classNames` apply), a file as COCO JSON.
    public static func load(path: String, split: String = "test", classNames: [String]? = nil) throws -> GroundTruth {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InputError(
                file: path,
                message: "ground truth not found (expected a VOCdevkit/VOC20xx folder or a COCO instances .json file)")
        }
        let url = URL(fileURLWithPath: path)
        if isDirectory.boolValue {
            return .voc(try VOCGroundTruth.load(devkit: url, split: split, classNames: classNames))
        }
        return .coco(try COCOGroundTruth.load(url))
    }

    public var index: DatasetIndex {
        switch self {
        case .voc(let gt): return gt.index
        case .coco(let gt): return gt.index
        }
    }

    public var warnings: [String] {
        switch self {
        case .voc(let gt): return gt.warnings
        case .coco(let gt): return gt.warnings
        }
    }

    /// What py-faster-rcnn does for VOC: the 11-point metric when the folder is VOC<year> with a year before
    /// 2010 ("VOC2007"), the area metric otherwise; COCO for COCO files.
    public var defaultMetric: Metric {
        switch self {
        case .coco: return .coco
        case .voc(let gt):
            let folder = gt.name.prefix(while: { $0 != " " })
            if folder.hasPrefix("VOC"), let year = Int(folder.dropFirst(3).prefix(4)), year < 2010 { return .voc07 }
            return .voc
        }
    }

    /// "VOC2007 test: 4952 images, 14976 objects, 20 classes".
    public var summary: String {
        switch self {
        case .voc(let gt):
            return
                "\(gt.name): \(gt.imageIDs.count) images, \(gt.objects.count) objects, \(gt.classNames.count) classes"
        case .coco(let gt):
            return "COCO: \(gt.images.count) images, \(gt.objects.count) objects, \(gt.categories.count) categories"
        }
    }
}

/// The numbers of one evaluation.
public enum EvaluationResult: Sendable {
    case coco(COCOEvaluation)
    /// One evaluation per requested IoU threshold; the first is the headline.
    case voc([VOCEvaluation])

    public var metric: Metric {
        switch self {
        case .coco: return .coco
        case .voc(let list): return list[0].metric == .voc07 ? .voc07 : .voc
        }
    }

    /// The number results are ranked by: COCO AP (IoU .50:.95), VOC mAP at the first threshold.
    public var headline: Double {
        switch self {
        case .coco(let e): return e.summary.ap
        case .voc(let list): return list[0].mAP
        }
    }
}

public struct EvaluationError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var description: String
    public var errorDescription: String? { description }
}

/// Evaluates resolved detections with `metric`. VOC metrics need VOC ground truth; the COCO metric works on
/// both (VOC objects become COCO boxes `[xmin, ymin, xmax - xmin, ymax - ymin]`, difficult ones ignored).
public func evaluate(
    _ groundTruth: GroundTruth, _ detections: [Detection], metric: Metric,
    vocIoUThresholds: [Double] = [0.5]
) throws -> EvaluationResult {
    switch (metric, groundTruth) {
    case (.coco, .coco(let gt)):
        return .coco(evaluateCOCO(gt, detections))
    case (.coco, .voc(let gt)):
        return .coco(evaluateCOCO(COCOGroundTruth(voc: gt), detections))
    case (.voc07, .voc(let gt)), (.voc, .voc(let gt)):
        let vocMetric: VOCMetric = metric == .voc07 ? .voc07 : .voc
        let thresholds = vocIoUThresholds.isEmpty ? [0.5] : vocIoUThresholds
        return .voc(thresholds.map { evaluateVOC(gt, detections, iouThreshold: $0, metric: vocMetric) })
    case (.voc07, .coco), (.voc, .coco):
        throw EvaluationError(
            description:
                "the \(metric.rawValue) metric needs VOC ground truth (a VOCdevkit/VOC20xx folder); for COCO ground "
                + "truth use --metric coco (its AP50 is the IoU 0.5 number)"
        )
    }
}

extension COCOGroundTruth {
    /// VOC ground truth seen with COCO semantics: images in split order, classes as categories 1...K, boxes
    /// `[xmin, ymin, xmax - xmin, ymax - ymin]` (the inverse of how detections name VOC corners), area w*h,
    /// difficult objects ignored (detections on them count neither way).
    public init(voc: VOCGroundTruth) {
        let index = voc.index
        let objects = voc.objects.enumerated().map { n, o in
            GroundTruthObject(
                id: n + 1, imageIndex: o.imageIndex, categoryIndex: o.classIndex,
                box: BoxXYWH(
                    x: o.box.xmin, y: o.box.ymin, width: o.box.xmax - o.box.xmin, height: o.box.ymax - o.box.ymin),
                isCrowd: false, isIgnored: o.difficult)
        }
        self.init(images: index.images, categories: index.categories, objects: objects, warnings: voc.warnings)
    }
}

// MARK: - Many results files against one ground truth

/// One row of a batch comparison.
public struct BatchRow: Sendable {
    public var file: String
    public var detections: Int
    public var result: EvaluationResult?
    /// Why the file could not be evaluated.
    public var error: String?
    public var seconds: Double
}

/// The results files a batch names: every `*.json` in a folder (sorted), or the paths listed in a text file
/// (one per line, relative to the list's folder; blank lines and '#' comments skipped).
public func resultFiles(in path: String) throws -> [URL] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw InputError(file: path, message: "not found (expected a folder of results .json files or a list file)")
    }
    let url = URL(fileURLWithPath: path)
    if isDirectory.boolValue {
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".json") }.sorted()
        if names.isEmpty { throw InputError(file: path, message: "no .json files in this folder") }
        return names.map { url.appendingPathComponent($0) }
    }
    let text = String(decoding: try readFile(url, what: "list of results files"), as: UTF8.self)
    let base = url.deletingLastPathComponent()
    let files = text.split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        .map { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : base.appendingPathComponent($0) }
    if files.isEmpty { throw InputError(file: path, message: "the list names no files") }
    return files
}

/// Evaluates each file against the one ground truth (loaded once by the caller). A file that cannot be read
/// becomes a row with its error; the others go on. `progress(done, total)` is called after each file.
public func evaluateBatch(
    _ groundTruth: GroundTruth, files: [URL], metric: Metric, vocIoUThresholds: [Double] = [0.5],
    unknown: UnknownIDPolicy = .reject,
    progress: (Int, Int) -> Void = { _, _ in }
) -> [BatchRow] {
    let index = groundTruth.index
    var rows: [BatchRow] = []
    for (n, file) in files.enumerated() {
        let start = Date()
        var row = BatchRow(file: file.path, detections: 0, result: nil, error: nil, seconds: 0)
        do {
            let list = try DetectionsFile.load(file, index: index, unknown: unknown)
            row.detections = list.detections.count
            row.result = try evaluate(groundTruth, list.detections, metric: metric, vocIoUThresholds: vocIoUThresholds)
        } catch {
            row.error = "\(error)"
        }
        row.seconds = Date().timeIntervalSince(start)
        rows.append(row)
        progress(n + 1, files.count)
    }
    return rows
}

/// Rows best first by the headline number; failed files last, in their original order.
public func rankedByHeadline(_ rows: [BatchRow]) -> [BatchRow] {
    let indexed = Array(rows.enumerated())
    return indexed.sorted { a, b in
        switch (a.element.result?.headline, b.element.result?.headline) {
        case let (x?, y?): return x != y ? x > y : a.offset < b.offset
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a.offset < b.offset
        }
    }.map(\.element)
}
