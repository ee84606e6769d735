import Foundation
import Detection

// COCO box evaluation with pycocotools' exact semantics (COCOeval, iouType "bbox").
//
// The work splits the way pycocotools' does, but runs per category in parallel and without per-detection
// allocation:
//   1. per (category, image): the IoU matrix of the image's detections (best score first, at most
//      maxDets.last) against its ground truth, computed once (`computeIoU`);
//   2. per area range and IoU threshold: greedy matching (`evaluateImg`), recorded as one bit per threshold
//      in a "matched" and an "ignored" mask per detection;
//   3. per category: all its detections in one score order, then for each maxDets / area / threshold the
//      cumulative TP/FP counts, the precision envelope and its samples at the recall thresholds
//      (`accumulate`);
//   4. the 12 summary numbers are means over the defined (> -1) entries (`summarize`).

/// An object-size range, in pixels of area (bounds included at both ends, as pycocotools compares).
public struct AreaRange: Equatable, Sendable {
    public var label: String
    public var lower: Double
    public var upper: Double
    public init(label: String, lower: Double, upper: Double) {
        self.label = label
        self.lower = lower
        self.upper = upper
    }
    @inlinable func excludes(_ area: Double) -> Bool { area < lower || area > upper }
}

/// COCOeval's parameters. `standard` is pycocotools' default for boxes, value for value.
public struct COCOParameters: Equatable, Sendable {
    public var iouThresholds: [Double]
    public var recallThresholds: [Double]
    /// Ascending; the last one is the per-image, per-category cap.
    public var maxDetections: [Int]
    public var areaRanges: [AreaRange]

    public init(iouThresholds: [Double], recallThresholds: [Double], maxDetections: [Int], areaRanges: [AreaRange]) {
        precondition(!iouThresholds.isEmpty && iouThresholds.count <= 64, "1 to 64 IoU thresholds")
        precondition(!maxDetections.isEmpty, "at least one maxDets value")
        self.iouThresholds = iouThresholds
        self.recallThresholds = recallThresholds
        self.maxDetections = maxDetections.sorted()
        self.areaRanges = areaRanges
    }

    /// IoU .50:.05:.95, recall 0:.01:1 (both as `np.linspace` computes them), maxDets 1/10/100,
    /// areas all / small (< 32^2) / medium (< 96^2) / large.
    public static let standard = COCOParameters(
        iouThresholds: linspace(0.5, 0.95, count: 10),
        recallThresholds: linspace(0.0, 1.0, count: 101),
        maxDetections: [1, 10, 100],
        areaRanges: [
            AreaRange(label: "all", lower: 0, upper: 1e5 * 1e5),
            AreaRange(label: "small", lower: 0, upper: 32 * 32),
            AreaRange(label: "medium", lower: 32 * 32, upper: 96 * 96),
            AreaRange(label: "large", lower: 96 * 96, upper: 1e5 * 1e5)
        ])
}

/// `numpy.linspace(start, stop, count)` bit for bit: `i * step + start`, the last value exactly `stop`.
/// (Thresholds are compared with `>=`, so 0.8999999999999999 and 0.9 are not the same threshold.)
public func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    guard count > 1 else { return [start] }
    let step = (stop - start) / Double(count - 1)
    return (0..<count).map { i in i == count - 1 ? stop : Double(i) * step + start }
}

/// The 12 numbers of `COCOeval.summarize()`, as fractions; -1 where undefined (no ground truth).
public struct COCOSummary: Equatable, Sendable {
    public var ap, ap50, ap75, apSmall, apMedium, apLarge: Double
    public var ar1, ar10, ar100, arSmall, arMedium, arLarge: Double

    /// The names the field uses, in pycocotools' order.
    public static let names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]

    /// pycocotools' own line labels, for the familiar printout.
    public static let pycocotoolsLines = [
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"
    ]

    public var values: [Double] {
        [ap, ap50, ap75, apSmall, apMedium, apLarge, ar1, ar10, ar100, arSmall, arMedium, arLarge]
    }

    public init(values v: [Double]) {
        precondition(v.count == 12)
        (ap, ap50, ap75, apSmall, apMedium, apLarge) = (v[0], v[1], v[2], v[3], v[4], v[5])
        (ar1, ar10, ar100, arSmall, arMedium, arLarge) = (v[6], v[7], v[8], v[9], v[10], v[11])
    }
}

/// The accumulated result: pycocotools' `eval['precision']` and `eval['recall']`, plus summaries.
public struct COCOEvaluation: Sendable {
    public let parameters: COCOParameters
    public let categories: [Category]
    /// Precision sampled at the recall thresholds, laid out [T][R][K][A][M]; -1 where the category has no
    /// (non-ignored) ground truth in the area range.
    public let precision: [Double]
    /// Final recall, laid out [T][K][A][M]; -1 likewise.
    public let recall: [Double]

    var T: Int { parameters.iouThresholds.count }
    var R: Int { parameters.recallThresholds.count }
    var K: Int { categories.count }
    var A: Int { parameters.areaRanges.count }
    var M: Int { parameters.maxDetections.count }

    public func precision(iou t: Int, recall r: Int, category k: Int, area a: Int, maxDets m: Int) -> Double {
        precision[(((t * R + r) * K + k) * A + a) * M + m]
    }

    public func recall(iou t: Int, category k: Int, area a: Int, maxDets m: Int) -> Double {
        recall[((t * K + k) * A + a) * M + m]
    }

    /// The 12 numbers over all categories, as `COCOeval.summarize()` prints them.
    public var summary: COCOSummary { summarize(categories: Array(0..<K)) }

    /// The 12 numbers restricted to one category.
    public func summary(category k: Int) -> COCOSummary { summarize(categories: [k]) }

    /// Per-category AP (IoU .50:.95, all areas, 100 detections), as Detectron2 reports it; -1 without
    /// ground truth.
    public func averagePrecision(category k: Int) -> Double {
        mean(ap: true, iou: nil, area: "all", maxDets: parameters.maxDetections.last!, categories: [k])
    }

    private func summarize(categories ks: [Int]) -> COCOSummary {
        let big = parameters.maxDetections.last!
        let small = parameters.maxDetections.first!
        let middle = parameters.maxDetections[min(1, M - 1)]
        return COCOSummary(values: [
            mean(ap: true, iou: nil, area: "all", maxDets: big, categories: ks),
            mean(ap: true, iou: 0.5, area: "all", maxDets: big, categories: ks),
            mean(ap: true, iou: 0.75, area: "all", maxDets: big, categories: ks),
            mean(ap: true, iou: nil, area: "small", maxDets: big, categories: ks),
            mean(ap: true, iou: nil, area: "medium", maxDets: big, categories: ks),
            mean(ap: true, iou: nil, area: "large", maxDets: big, categories: ks),
            mean(ap: false, iou: nil, area: "all", maxDets: small, categories: ks),
            mean(ap: false, iou: nil, area: "all", maxDets: middle, categories: ks),
            mean(ap: false, iou: nil, area: "all", maxDets: big, categories: ks),
            mean(ap: false, iou: nil, area: "small", maxDets: big, categories: ks),
            mean(ap: false, iou: nil, area: "medium", maxDets: big, categories: ks),
            mean(ap: false, iou: nil, area: "large", maxDets: big, categories: ks)
        ])
    }

    /// pycocotools `_summarize`: the mean of the entries > -1 in the selected slice, -1 when there are none.
    /// A threshold is selected by exact equality, as `np.where(iouThr == p.iouThrs)` does.
    private func mean(ap: Bool, iou: Double?, area: String, maxDets: Int, categories ks: [Int]) -> Double {
        guard let a = parameters.areaRanges.firstIndex(where: { $0.label == area }),
            let m = parameters.maxDetections.firstIndex(of: maxDets)
        else { return -1 }
        let ts = (0..<T).filter { iou == nil || parameters.iouThresholds[$0] == iou! }
        var sum = 0.0, count = 0
        for t in ts {
            for k in ks {
                if ap {
                    for r in 0..<R {
                        let v = precision(iou: t, recall: r, category: k, area: a, maxDets: m)
                        if v > -1 { sum += v; count += 1 }
                    }
                } else {
                    let v = recall(iou: t, category: k, area: a, maxDets: m)
                    if v > -1 { sum += v; count += 1 }
                }
            }
        }
        return count == 0 ? -1 : sum / Double(count)
    }
}

// MARK: - Evaluation

/// Evaluates detections against COCO-style ground truth exactly as pycocotools' COCOeval (bbox) does.
/// Categories are evaluated in parallel.
public func evaluateCOCO(
    _ groundTruth: COCOGroundTruth, _ detections: [Detection],
    parameters p: COCOParameters = .standard
) -> COCOEvaluation {
    let K = groundTruth.categories.count
    let (T, R, A, M) = (p.iouThresholds.count, p.recallThresholds.count, p.areaRanges.count, p.maxDetections.count)
    let gtByCategory = bucket(groundTruth.objects.count, into: K) { groundTruth.objects[$0].categoryIndex }
    let dtByCategory = bucket(detections.count, into: K) { Int(detections[$0].categoryIndex) }

    var precision = [Double](repeating: -1, count: T * R * K * A * M)
    var recall = [Double](repeating: -1, count: T * K * A * M)
    precision.withUnsafeMutableBufferPointer { precisionOut in
        recall.withUnsafeMutableBufferPointer { recallOut in
            let out = SharedOutput(precision: precisionOut, recall: recallOut)
            groundTruth.objects.withUnsafeBufferPointer { objects in
                detections.withUnsafeBufferPointer { dets in
                    DispatchQueue.concurrentPerform(iterations: K) { k in
                        let table = matchCategory(
                            objects: objects, gtIndices: gtByCategory[k],
                            detections: dets, dtIndices: dtByCategory[k], parameters: p)
                        accumulateCategory(table, category: k, categoryCount: K, parameters: p, out: out)
                    }
                }
            }
        }
    }
    return COCOEvaluation(parameters: p, categories: groundTruth.categories, precision: precision, recall: recall)
}

/// Output arrays shared by the per-category workers; each worker writes only its own category's entries.
private struct SharedOutput: @unchecked Sendable {
    let precision: UnsafeMutableBufferPointer<Double>
    let recall: UnsafeMutableBufferPointer<Double>
}

/// Indices 0..<count grouped by `key` (in 0..<groups), keeping their order within each group.
private func bucket(_ count: Int, into groups: Int, key: (Int) -> Int) -> [[Int32]] {
    var buckets = [[Int32]](repeating: [], count: groups)
    for i in 0..<count { buckets[key(i)].append(Int32(i)) }
    return buckets
}

/// Step 1 and 2 for one category: every kept detection becomes a slot (image order, then score order
/// within the image), with per-area bitmasks over the IoU thresholds.
private struct MatchTable {
    var scores: [Double] = []
    /// Rank of the detection within its image (0 = best score), for the maxDets cuts.
    var ranks: [Int32] = []
    /// `matched[a * slots + s]` bit t: detection s is matched at threshold t for area range a.
    var matched: [UInt64] = []
    /// `ignored[a * slots + s]` bit t: ... matched to an ignored object, or unmatched and outside the range.
    var ignored: [UInt64] = []
    /// Non-ignored ground truth per area range (pycocotools `npig`).
    var positives: [Int] = []
    var slots: Int { scores.count }
}

private func matchCategory(
    objects: UnsafeBufferPointer<GroundTruthObject>, gtIndices: [Int32],
    detections: UnsafeBufferPointer<Detection>, dtIndices: [Int32],
    parameters p: COCOParameters
) -> MatchTable {
    let A = p.areaRanges.count
    let maxDet = p.maxDetections.last!
    // Ground truth by image, file order within an image (the order pycocotools' matcher scans).
    let gts = gtIndices.sorted { (objects[Int($0)].imageIndex, $0) < (objects[Int($1)].imageIndex, $1) }
    // Detections by image, then best score first; equal scores keep file order (pycocotools' mergesort).
    let dts = dtIndices.sorted {
        let a = detections[Int($0)], b = detections[Int($1)]
        if a.imageIndex != b.imageIndex { return a.imageIndex < b.imageIndex }
        if a.score != b.score { return a.score > b.score }
        return $0 < $1
    }

    var table = MatchTable()
    table.scores.reserveCapacity(dts.count)
    table.ranks.reserveCapacity(dts.count)
    var matchedByArea = [[UInt64]](repeating: [], count: A)  // slot order, one list per area range
    var ignoredByArea = [[UInt64]](repeating: [], count: A)
    table.positives = [Int](repeating: 0, count: A)
    var scratch = ImageScratch()

    var g = 0, d = 0
    while g < gts.count || d < dts.count {
        // The next image that has ground truth or detections of this category.
        let gImage = g < gts.count ? objects[Int(gts[g])].imageIndex : Int.max
        let dImage = d < dts.count ? Int(detections[Int(dts[d])].imageIndex) : Int.max
        let image = min(gImage, dImage)
        let g0 = g, d0 = d
        while g < gts.count && objects[Int(gts[g])].imageIndex == image { g += 1 }
        while d < dts.count && Int(detections[Int(dts[d])].imageIndex) == image { d += 1 }
        let imageDets = dts[d0..<min(d, d0 + maxDet)]

        scratch.load(objects: objects, gts: gts[g0..<g], detections: detections, dts: imageDets)
        for a in 0..<A {
            table.positives[a] += scratch.evaluate(
                area: p.areaRanges[a], thresholds: p.iouThresholds,
                matched: &matchedByArea[a], ignored: &ignoredByArea[a])
        }
        for (rank, s) in imageDets.enumerated() {
            table.scores.append(detections[Int(s)].score)
            table.ranks.append(Int32(rank))
        }
    }
    table.matched = matchedByArea.flatMap { $0 }
    table.ignored = ignoredByArea.flatMap { $0 }
    return table
}

/// Reused buffers for one image of one category: boxes, the IoU matrix, and the matcher's state.
private struct ImageScratch {
    var dtBoxes: [BoxXYWH] = []
    var gtBoxes: [BoxXYWH] = []
    var gtArea: [Double] = []
    var gtCrowd: [Bool] = []
    var gtAlwaysIgnored: [Bool] = []
    /// `iou[d * G + g]`, ground truth in file order.
    var iou: [Double] = []
    var gtIgnored: [Bool] = []
    var order: [Int] = []
    var taken: [Bool] = []

    /// Copies the image's boxes and computes the IoU matrix (pycocotools `computeIoU`).
    mutating func load(
        objects: UnsafeBufferPointer<GroundTruthObject>, gts: ArraySlice<Int32>,
        detections: UnsafeBufferPointer<Detection>, dts: ArraySlice<Int32>
    ) {
        dtBoxes.removeAll(keepingCapacity: true)
        gtBoxes.removeAll(keepingCapacity: true)
        gtArea.removeAll(keepingCapacity: true)
        gtCrowd.removeAll(keepingCapacity: true)
        gtAlwaysIgnored.removeAll(keepingCapacity: true)
        for i in dts { dtBoxes.append(detections[Int(i)].box) }
        for i in gts {
            let o = objects[Int(i)]
            gtBoxes.append(o.box)
            gtArea.append(o.area)
            gtCrowd.append(o.isCrowd)
            gtAlwaysIgnored.append(o.isCrowd || o.isIgnored)
        }
        let D = dtBoxes.count, G = gtBoxes.count
        iou.removeAll(keepingCapacity: true)
        iou.reserveCapacity(D * G)
        for d in 0..<D {
            for g in 0..<G { iou.append(cocoIoU(detection: dtBoxes[d], groundTruth: gtBoxes[g], crowd: gtCrowd[g])) }
        }
    }

    /// pycocotools `evaluateImg` for one area range, all IoU thresholds: appends per detection the threshold
    /// bitmasks "matched" and "ignored", and returns the number of non-ignored ground-truth objects.
    mutating func evaluate(
        area: AreaRange, thresholds: [Double],
        matched: inout [UInt64], ignored: inout [UInt64]
    ) -> Int {
        let D = dtBoxes.count, G = gtBoxes.count
        // Ground truth outside the area range (or crowd / ignored) is ignored; ignored objects go last,
        // keeping file order otherwise (pycocotools' stable argsort), so the matcher can stop early.
        gtIgnored.removeAll(keepingCapacity: true)
        order.removeAll(keepingCapacity: true)
        var positives = 0
        for g in 0..<G {
            let ig = gtAlwaysIgnored[g] || area.excludes(gtArea[g])
            gtIgnored.append(ig)
            if !ig { order.append(g); positives += 1 }
        }
        for g in 0..<G where gtIgnored[g] { order.append(g) }

        let base = matched.count
        matched.append(contentsOf: repeatElement(0, count: D))
        ignored.append(contentsOf: repeatElement(0, count: D))
        if G > 0 {
            for (t, threshold) in thresholds.enumerated() {
                let bit = UInt64(1) << UInt64(t)
                taken.removeAll(keepingCapacity: true)
                taken.append(contentsOf: repeatElement(false, count: G))
                for d in 0..<D {
                    guard let g = bestMatch(detection: d, threshold: threshold) else { continue }
                    matched[base + d] |= bit
                    if gtIgnored[g] { ignored[base + d] |= bit }
                    taken[g] = true
                }
            }
        }
        // Unmatched detections outside the area range are ignored too.
        let all: UInt64 = thresholds.count == 64 ? ~0 : (UInt64(1) << UInt64(thresholds.count)) - 1
        for d in 0..<D where area.excludes(dtBoxes[d].area) { ignored[base + d] |= all & ~matched[base + d] }
        return positives
    }

    /// The greedy choice of pycocotools' matcher for one detection at one threshold: walking the ground
    /// truth in `order`, skip objects already taken (crowd regions never count as taken), stop at the first
    /// ignored object once a non-ignored one is matched, and keep the last object whose IoU is at least the
    /// best so far (starting from the threshold, capped at 1 - 1e-10).
    @inline(__always)
    private func bestMatch(detection d: Int, threshold: Double) -> Int? {
        let G = gtBoxes.count
        var best = min(threshold, 1 - 1e-10)
        var m = -1
        for g in order {
            if taken[g] && !gtCrowd[g] { continue }
            if m > -1 && !gtIgnored[m] && gtIgnored[g] { break }
            let v = iou[d * G + g]
            if v < best { continue }
            best = v
            m = g
        }
        return m == -1 ? nil : m
    }
}

/// pycocotools `accumulate` for one category: precision at the recall thresholds and final recall for every
/// IoU threshold, area range and maxDets, written into the shared output.
private func accumulateCategory(
    _ table: MatchTable, category k: Int, categoryCount K: Int,
    parameters p: COCOParameters, out: SharedOutput
) {
    let (T, R, A, M) = (p.iouThresholds.count, p.recallThresholds.count, p.areaRanges.count, p.maxDetections.count)
    let n = table.slots
    // One score order for the whole category: best first, equal scores in image order then rank order,
    // which is what pycocotools' stable sort of the per-image lists (concatenated in image order) gives.
    let order = table.scores.withUnsafeBufferPointer { scores in
        (0..<Int32(n)).sorted { a, b in
            let x = scores[Int(a)], y = scores[Int(b)]
            return x != y ? x > y : a < b
        }
    }
    var selected = [Int32]()
    selected.reserveCapacity(n)
    // Per threshold t, entries t*nd ..< (t+1)*nd: cumulative TP count and precision after each detection.
    var cumulativeTP = [Double](repeating: 0, count: T * n)
    var precision = [Double](repeating: 0, count: T * n)
    var tp = [Double](repeating: 0, count: T), fp = [Double](repeating: 0, count: T)
    let eps = Double.ulpOfOne  // np.spacing(1)

    for m in 0..<M {
        selected.removeAll(keepingCapacity: true)
        for s in order where Int(table.ranks[Int(s)]) < p.maxDetections[m] { selected.append(s) }
        let nd = selected.count
        for a in 0..<A {
            let positives = Double(table.positives[a])
            if positives == 0 { continue }  // no ground truth: stays -1, left out of the means
            table.matched.withUnsafeBufferPointer { matched in
                table.ignored.withUnsafeBufferPointer { ignored in
                    cumulativeTP.withUnsafeMutableBufferPointer { cumulativeTP in
                        precision.withUnsafeMutableBufferPointer { precision in
                            // Cumulative TP / FP counts in score order, all thresholds in one pass. A detection that is
                            // ignored at a threshold counts as neither.
                            for t in 0..<T { tp[t] = 0; fp[t] = 0 }
                            for (i, s) in selected.enumerated() {
                                let matchedBits = matched[a * n + Int(s)], ignoredBits = ignored[a * n + Int(s)]
                                for t in 0..<T {
                                    let bit = UInt64(1) << UInt64(t)
                                    if ignoredBits & bit == 0 {
                                        if matchedBits & bit != 0 { tp[t] += 1 } else { fp[t] += 1 }
                                    }
                                    cumulativeTP[t * nd + i] = tp[t]
                                    precision[t * nd + i] = tp[t] / (fp[t] + tp[t] + eps)
                                }
                            }
                            for t in 0..<T {
                                out.recall[((t * K + k) * A + a) * M + m] = nd > 0 ? tp[t] / positives : 0
                                let curve = precision.baseAddress! + t * nd, counts = cumulativeTP.baseAddress! + t * nd
                                // Make precision monotone from the right (the envelope).
                                var i = nd - 1
                                while i > 0 {
                                    if curve[i] > curve[i - 1] { curve[i - 1] = curve[i] }
                                    i -= 1
                                }
                                // Sample it at each recall threshold: the first detection whose recall reaches it
                                // (np.searchsorted, side "left"); 0 where recall never gets there.
                                var j = 0
                                for r in 0..<R {
                                    let threshold = p.recallThresholds[r]
                                    while j < nd && counts[j] / positives < threshold { j += 1 }
                                    out.precision[(((t * R + r) * K + k) * A + a) * M + m] = j < nd ? curve[j] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
