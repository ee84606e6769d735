import Foundation
import Support
import Detection
import Engine
import Imaging
import Evaluation

/// One annotated training/validation image. Boxes are corners (x1, y1, x2, y2) in the image's pixels,
/// labels 1...K.
public struct DetectionSample: Sendable {
    public var id: String
    public var image: URL
    public var boxes: [[Float]]
    public var labels: [Int]
    /// The image's size when the annotations declare it (COCO's width/height); nil = read from the file.
    public var width: Int? = nil, height: Int? = nil

    public init(id: String, image: URL, boxes: [[Float]], labels: [Int], width: Int? = nil, height: Int? = nil) {
        self.id = id; self.image = image; self.boxes = boxes; self.labels = labels; self.width = width;
        self.height = height
    }
}

/// A detection data set: Pascal VOC folders or COCO JSON, read into one form.
public struct DetectionDataset: Sendable {
    public var classNames: [String]
    public var samples: [DetectionSample]
    public var warnings: [String] = []
    /// The evaluator's view of the same ground truth (for validation mAP), VOC semantics.
    public var vocGroundTruth: VOCGroundTruth?
    /// COCO: the category id of each class (label k is categoryIds[k - 1]); nil for VOC (ids 1...K).
    public var categoryIds: [Int]? = nil

    /// What to do with boxes of zero or negative size.
    public enum InvalidBoxPolicy: String, ChoiceField { case reject, drop }

    /// A VOC devkit folder (`JPEGImages/`, `Annotations/`, `ImageSets/Main/<split>.txt`). Difficult objects
    /// are left out of training (as py-faster-rcnn does) and kept as "difficult" for evaluation.
    public static func voc(
        devkit: URL, split: String, classNames: [String]? = nil, invalidBoxes: InvalidBoxPolicy,
        forTraining: Bool
    ) throws -> DetectionDataset {
        let gt = try VOCGroundTruth.load(devkit: devkit, split: split, classNames: classNames)
        if forTraining && !gt.unknownClasses.isEmpty {
            // Training on them would teach the detector that these objects are background.
            let list = gt.unknownClasses.sorted { $0.key < $1.key }.map { "\"\($0.key)\" (\($0.value))" }.joined(
                separator: ", ")
            throw DetectorError(
                "\(devkit.path) \(split): objects of classes not in the class list (data.classes: "
                    + "\(gt.classNames.joined(separator: ", "))): \(list); fix the annotations or add the classes")
        }
        var perImage = [[VOCGroundTruthObject]](repeating: [], count: gt.imageIDs.count)
        for o in gt.objects { perImage[o.imageIndex].append(o) }
        var samples: [DetectionSample] = []
        var warnings = gt.warnings
        var dropped = 0
        for (i, id) in gt.imageIDs.enumerated() {
            let img = VOCGroundTruth.imageFile(devkit: devkit, id: id)
            guard FileManager.default.fileExists(atPath: img.path) else {
                throw DetectorError(
                    "\(devkit.appendingPathComponent("JPEGImages/\(id).jpg").path): image for annotation \(id).xml not "
                    + "found"
                )
            }
            var boxes: [[Float]] = [], labels: [Int] = []
            for (k, o) in perImage[i].enumerated() where !(forTraining && o.difficult) {
                let b = [Float(o.box.xmin), Float(o.box.ymin), Float(o.box.xmax), Float(o.box.ymax)]
                if !(b[2] > b[0] && b[3] > b[1]) || b.contains(where: { !$0.isFinite }) {
                    let what =
                        "\(devkit.appendingPathComponent("Annotations/\(id).xml").path): object \(k + 1) "
                        + "(\(gt.classNames[o.classIndex])) has a box of zero or negative size \(b)"
                    if invalidBoxes == .reject {
                        throw DetectorError(what + " (set data.invalid_boxes: drop to leave such boxes out)")
                    }
                    dropped += 1
                    continue
                }
                boxes.append(b); labels.append(o.classIndex + 1)
            }
            samples.append(DetectionSample(id: id, image: img, boxes: boxes, labels: labels))
        }
        if dropped > 0 { warnings.append("left out \(dropped) boxes of zero or negative size") }
        return DetectionDataset(classNames: gt.classNames, samples: samples, warnings: warnings, vocGroundTruth: gt)
    }

    /// COCO instances JSON (boxes xywh; crowd regions are left out of training); category ids are mapped
    /// to contiguous labels 1...K in id order, and back through `classNames`.
    public static func coco(annotations: URL, images: URL, invalidBoxes: InvalidBoxPolicy) throws -> DetectionDataset {
        let data: Data
        do { data = try Data(contentsOf: annotations) } catch {
            throw DetectorError("\(annotations.path): cannot read (\((error as NSError).localizedDescription))")
        }
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch {
            throw DetectorError(
                "\(annotations.path): malformed JSON "
                + "(\(((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"))"
            )
        }
        func fail(_ m: String) -> DetectorError { DetectorError("\(annotations.path): \(m)") }
        guard let root = obj as? [String: Any] else {
            throw fail("expected a JSON object with images, annotations, categories")
        }
        guard let imgs = root["images"] as? [[String: Any]] else { throw fail("missing or malformed \"images\" list") }
        guard let anns = root["annotations"] as? [[String: Any]] else {
            throw fail("missing or malformed \"annotations\" list")
        }
        guard let cats = root["categories"] as? [[String: Any]] else {
            throw fail("missing or malformed \"categories\" list")
        }
        var catIDs: [(Int, String)] = []
        for (k, c) in cats.enumerated() {
            guard let id = (c["id"] as? NSNumber)?.intValue, let name = c["name"] as? String else {
                throw fail("categories[\(k)] needs an integer id and a name")
            }
            catIDs.append((id, name))
        }
        catIDs.sort { $0.0 < $1.0 }
        // Duplicates would add a class (or an image) silently: refuse them, as the evaluator does.
        for (a, b) in zip(catIDs, catIDs.dropFirst()) where a.0 == b.0 {
            throw fail("category id \(a.0) is listed twice in \"categories\"")
        }
        var names = Set<String>()
        for (_, name) in catIDs where !names.insert(name).inserted {
            throw fail("category name \"\(name)\" is listed twice in \"categories\"")
        }
        var labelOf: [Int: Int] = [:]
        for (k, (id, _)) in catIDs.enumerated() { labelOf[id] = k + 1 }
        var byID: [Int: Int] = [:]
        var samples: [DetectionSample] = []
        for (k, im) in imgs.enumerated() {
            guard let id = (im["id"] as? NSNumber)?.intValue, let file = im["file_name"] as? String else {
                throw fail("images[\(k)] needs an integer id and a file_name")
            }
            guard byID[id] == nil else { throw fail("image id \(id) is listed twice in \"images\"") }
            byID[id] = samples.count
            samples.append(
                DetectionSample(
                    id: String(id), image: images.appendingPathComponent(file), boxes: [], labels: [],
                    width: (im["width"] as? NSNumber)?.intValue, height: (im["height"] as? NSNumber)?.intValue))
        }
        var dropped = 0
        var annotationIDs = Set<Int>()
        for (k, a) in anns.enumerated() {
            if let aid = (a["id"] as? NSNumber)?.intValue, !annotationIDs.insert(aid).inserted {
                throw fail("annotations[\(k)]: annotation id \(aid) is used twice")
            }
            guard let iid = (a["image_id"] as? NSNumber)?.intValue, let s = byID[iid] else {
                throw fail("annotations[\(k)]: unknown or missing image_id")
            }
            guard let cid = (a["category_id"] as? NSNumber)?.intValue, let label = labelOf[cid] else {
                throw fail("annotations[\(k)]: unknown or missing category_id")
            }
            guard let bb = a["bbox"] as? [NSNumber], bb.count == 4 else {
                throw fail("annotations[\(k)]: bbox must be [x, y, w, h]")
            }
            if ((a["iscrowd"] as? NSNumber)?.intValue ?? 0) != 0 { continue }
            let x = bb[0].floatValue, y = bb[1].floatValue, w = bb[2].floatValue, h = bb[3].floatValue
            guard w > 0 && h > 0 && x.isFinite && y.isFinite else {
                if invalidBoxes == .reject {
                    throw fail(
                        "annotations[\(k)] (image \(iid)): box of zero or negative size [\(x), \(y), \(w), \(h)] (set "
                        + "data.invalid_boxes: drop to leave such boxes out)"
                    )
                }
                dropped += 1; continue
            }
            samples[s].boxes.append([x, y, x + w, y + h]); samples[s].labels.append(label)
        }
        return DetectionDataset(
            classNames: catIDs.map { $0.1 }, samples: samples,
            warnings: dropped > 0 ? ["left out \(dropped) boxes of zero or negative size"] : [], vocGroundTruth: nil,
            categoryIds: catIDs.map { $0.0 })
    }
}

extension DetectionDataset {
    /// Whether each image is wider than tall (width >= height), for aspect-ratio grouping: from the
    /// annotations' declared size when present, else from the image file's header (the first 256 KB are
    /// enough for any JPEG or PNG header; unreadable files count as wide and fail later, when loaded, with
    /// their own message).
    public func landscapeFlags() -> [Bool] {
        samples.map { s in
            if let w = s.width, let h = s.height, w > 0, h > 0 { return w >= h }
            guard let fh = try? FileHandle(forReadingFrom: s.image) else { return true }
            defer { try? fh.close() }
            guard let head = try? fh.read(upToCount: 1 << 18) else { return true }
            if let size = try? ImageIO.size(of: head, name: s.image.path) { return size.width >= size.height }
            guard let all = try? Data(contentsOf: s.image), let size = try? ImageIO.size(of: all, name: s.image.path)
            else { return true }
            return size.width >= size.height
        }
    }
}
