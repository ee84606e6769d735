import XCTest
import Foundation
import Engine
import Detection
import Detector

/// `rpnLabels` and `roiLabels` against brute-force assignments written from their definitions, on random
/// boxes built to contain the corner cases (ties, exact thresholds, GT boxes no anchor covers well or at all).
final class LabellingTests: XCTestCase {
    /// A small detector; only its config (thresholds, anchors) matters here.
    func model(_ edit: (inout DetectorConfig) -> Void = { _ in }) throws -> FasterRCNN {
        var c = DetectorConfig()
        c.backbone.depth = 18; c.backbone.widths = [4, 8, 8, 8]; c.backbone.stemWidth = 4
        c.anchors.sizes = [16, 32]; c.anchors.aspectRatios = [0.5, 1, 2]
        c.classNames = ["a", "b", "c"]
        edit(&c)
        return try FasterRCNN(c, seed: 1)
    }

    /// IoU of corner boxes: width x2 - x1 and height y2 - y1 (no +1), 0 where they do not overlap; Float in
    /// torchvision's `box_iou` order (area of a + area of b, minus the intersection), so that ties are exact.
    static func iou(_ a: [Float], _ b: [Float]) -> Float {
        let w = max(min(a[2], b[2]) - max(a[0], b[0]), 0), h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
        let inter = w * h
        guard inter > 0 else { return 0 }
        return inter / (((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter)
    }

    /// The first GT index of the highest IoU with box `j` (torch.max / argmax return the first maximum).
    static func argmax(_ q: [[Float]], _ j: Int) -> Int {
        var bi = 0
        for i in q.indices where q[i][j] > q[bi][j] { bi = i }
        return bi
    }

    static func rows(_ t: Tensor) -> [[Float]] { (0..<t.shape[0]).map { i in (0..<4).map { t.data[4 * i + $0] } } }
    static func tensor(_ boxes: [[Float]]) -> Tensor { Tensor(boxes.flatMap { $0 }, shape: [boxes.count, 4]) }

    /// RPN rule (Faster R-CNN; torchvision's Matcher with allow_low_quality_matches): label 1 where the
    /// anchor's best IoU >= fg, 0 where it is < bg, -1 in between; then, for every GT whose highest IoU is
    /// > 0, each anchor attaining that highest IoU (all ties) is 1 too, matched to its own arg-max GT. The
    /// matched GT is the arg-max for positives, -1 otherwise. No GT: all 0, unmatched.
    static func bruteRPN(anchors: [[Float]], gt: [[Float]], fg: Float, bg: Float) -> (labels: [Int], matched: [Int]) {
        let a = anchors.count
        guard !gt.isEmpty else { return ([Int](repeating: 0, count: a), [Int](repeating: -1, count: a)) }
        let q = gt.map { g in anchors.map { iou(g, $0) } }
        var labels = [Int](repeating: -1, count: a), matched = [Int](repeating: -1, count: a)
        for j in 0..<a {
            let bi = argmax(q, j), v = q[bi][j]
            if v >= fg { labels[j] = 1; matched[j] = bi } else if v < bg { labels[j] = 0 }
        }
        for i in gt.indices {
            let highest = q[i].max()!
            guard highest > 0 else { continue }  // a GT overlapping no anchor gets none (see Matcher)
            for j in 0..<a where q[i][j] == highest { labels[j] = 1; matched[j] = argmax(q, j) }
        }
        return (labels, matched)
    }

    /// RoI rule: the matched GT is the arg-max over GT (every proposal, -1 only without GT); the label is that
    /// GT's class where the IoU >= fg, 0 (background) in [bgLow, bgHigh), -1 (not sampled) otherwise. No GT:
    /// the best IoU counts as 0.
    static func bruteRoI(proposals: [[Float]], gt: [[Float]], classes: [Int], fg: Float, bgLow: Float, bgHigh: Float)
        -> (labels: [Int], matched: [Int])
    {
        let q = gt.map { g in proposals.map { iou(g, $0) } }
        var labels: [Int] = [], matched: [Int] = []
        for j in proposals.indices {
            let bi = gt.isEmpty ? -1 : argmax(q, j), v = gt.isEmpty ? 0 : q[bi][j]
            matched.append(bi)
            labels.append(v >= fg ? classes[bi] : (v >= bgLow && v < bgHigh ? 0 : -1))
        }
        return (labels, matched)
    }

    /// A random box: integer corners half of the time (ties with the anchor grid and other boxes), sizes 4-60.
    static func box(_ rng: inout SeededRNG, span: Float = 100) -> [Float] {
        let integer = rng.int(below: 2) == 0
        func v(_ lo: Float, _ hi: Float) -> Float { let x = rng.uniform(lo, hi); return integer ? x.rounded() : x }
        let x = v(-8, span - 8), y = v(-8, span - 8)
        return [x, y, x + v(4, 60), y + v(4, 60)]
    }

    /// rpnLabels on the anchors of random feature maps with random GT sets, including duplicated GT boxes
    /// (arg-max ties), GT boxes equal to an anchor, small GT boxes that no anchor overlaps by fg_iou (kept as
    /// low-quality matches) and one far outside every anchor (no match at all); every case must occur.
    func testRPNLabelsAgainstBruteForce() throws {
        for (fg, bg) in [(Float(0.7), Float(0.3)), (0.5, 0.5), (0.6, 0.2)] {
            let m = try model {
                $0.rpn.fgIou = fg; $0.rpn.bgIou = bg
            }
            var seen = (lowQuality: 0, lowQualityOtherGT: 0, gtTies: 0, anchorTies: 0, ignored: 0, unmatchable: 0)
            for seed in 0..<12 {
                var rng = SeededRNG(seed: 100 + UInt64(seed))
                let fh = 3 + rng.int(below: 4), fw = 3 + rng.int(below: 4)
                let anchorT = m.rpn.anchorGenerator.anchors(featureHeight: fh, featureWidth: fw)
                let anchors = Self.rows(anchorT)
                var gt = (0..<(1 + rng.int(below: 5))).map { _ in Self.box(&rng, span: Float(16 * max(fh, fw))) }
                gt.append([Float(rng.int(below: 20)) + 2, Float(rng.int(below: 20)) + 2, 0, 0])  // small, filled below
                gt[gt.count - 1][2] = gt[gt.count - 1][0] + 5; gt[gt.count - 1][3] = gt[gt.count - 1][1] + 7
                gt.append(anchors[rng.int(below: anchors.count)])  // an anchor exactly
                gt.insert(gt[rng.int(below: gt.count)], at: rng.int(below: gt.count + 1))  // a duplicate
                if seed % 3 == 0 { gt.append([5000, 5000, 5040, 5030]) }  // overlaps nothing
                let (labels, matched) = m.rpn.labels(anchors: anchorT, gt: Self.tensor(gt))
                let want = Self.bruteRPN(anchors: anchors, gt: gt, fg: fg, bg: bg)
                XCTAssertEqual(labels, want.labels, "labels, fg \(fg) bg \(bg) seed \(seed)")
                XCTAssertEqual(matched, want.matched, "matched GT, fg \(fg) bg \(bg) seed \(seed)")
                // What the case exercised.
                let q = gt.map { g in anchors.map { Self.iou(g, $0) } }
                for j in anchors.indices {
                    let best = q.map { $0[j] }.max()!, bi = Self.argmax(q, j)
                    if want.labels[j] == 1 && best < fg { seen.lowQuality += 1 }
                    if want.labels[j] == -1 { seen.ignored += 1 }
                    if want.labels[j] == 1 && q.indices.filter({ q[$0][j] == best }).count > 1 { seen.gtTies += 1 }
                    // A low-quality match through GT i whose arg-max is another GT: matched must be the arg-max.
                    if best < fg
                        && q.indices.contains(where: { i in
                            i != bi && q[i][j] > 0 && q[i][j] == q[i].max()! && q[i][j] < best
                        })
                    {
                        seen.lowQualityOtherGT += 1
                    }
                }
                for i in gt.indices {
                    let h = q[i].max()!
                    if h > 0 && q[i].filter({ $0 == h }).count > 1 { seen.anchorTies += 1 }
                    if h == 0 { seen.unmatchable += 1 }
                }
            }
            XCTAssert(
                seen.lowQuality > 0 && seen.gtTies > 0 && seen.anchorTies > 0 && seen.unmatchable > 0,
                "cases not exercised at fg \(fg) bg \(bg): \(seen)")
            if fg > bg { XCTAssertGreaterThan(seen.ignored, 0, "\(seen)") }
            if ProcessInfo.processInfo.environment["LABELLING_VERBOSE"] != nil {
                print("rpn fg \(fg) bg \(bg): \(seen)")
            }
            if fg == 0.7 { XCTAssertGreaterThan(seen.lowQualityOtherGT, 0, "\(seen)") }
        }
    }

    /// Hand-made anchors at the exact thresholds (IoU 70/100 and 30/100 in Float equal 0.7 and 0.3), the
    /// low-quality rule's ties and its matched GT, and an image without GT.
    func testRPNLabelsAtThresholdsAndWithoutGT() throws {
        let m = try model()
        let gt: [[Float]] = [[0, 0, 10, 10], [100, 0, 110, 10], [0, 0, 10, 10]]
        let anchors: [[Float]] = [
            [0, 0, 10, 7],  // IoU 0.7 with GT 0 (and GT 2, its duplicate): positive, matched 0 (first)
            [0, 0, 10, 3],  // 0.3: not below bg_iou, ignored
            [0, 0, 10, 2.5],  // 0.25: background
            [100, 0, 106, 10],  // 0.6 with GT 1, its best anchor: low-quality positive
            [104, 0, 110, 10],  // 0.6 too: a tie, also positive
            [50, 50, 60, 60]  // overlaps nothing: background
        ]
        let (labels, matched) = m.rpn.labels(anchors: Self.tensor(anchors), gt: Self.tensor(gt))
        XCTAssertEqual(labels, [1, -1, 0, 1, 1, 0])
        XCTAssertEqual(matched, [0, -1, -1, 1, 1, -1])
        XCTAssertEqual(Self.bruteRPN(anchors: anchors, gt: gt, fg: 0.7, bg: 0.3).labels, labels)
        let none = m.rpn.labels(anchors: Self.tensor(anchors), gt: Tensor(zeros: [0, 4]))
        XCTAssertEqual(none.labels, [Int](repeating: 0, count: anchors.count))
        XCTAssertEqual(none.matched, [Int](repeating: -1, count: anchors.count))
    }

    /// roiLabels labels and matched GT indices on random proposals (GT boxes appended, as the trainer does),
    /// with duplicated GT boxes of different classes (the first wins), proposals at the exact thresholds, and
    /// settings with and without a gap between background and foreground; no-GT images.
    func testRoILabelsAndMatchesAgainstBruteForce() throws {
        for (fg, lo, hi) in [(Float(0.5), Float(0), Float(0.5)), (0.5, 0.1, 0.5), (0.6, 0.1, 0.4)] {
            let m = try model {
                $0.roi.fgIou = fg; $0.roi.bgIouLow = lo; $0.roi.bgIouHigh = hi
            }
            var seen = (fg: 0, bg: 0, belowLow: 0, gap: 0, tieClasses: 0, exact: 0)
            for seed in 0..<15 {
                var rng = SeededRNG(seed: 200 + UInt64(seed))
                let g = seed % 5 == 0 ? 0 : 1 + rng.int(below: 4)
                var gt = (0..<g).map { _ in Self.box(&rng) }
                var classes = (0..<g).map { _ in 1 + rng.int(below: 3) }
                var props = (0..<(5 + rng.int(below: 30))).map { _ in Self.box(&rng) }
                if g > 0 {
                    // GT 0 a 10x10 square at integer corners, and proposals cut from it with IoU h / 10 exactly
                    // (h x 10 / 100 in Float is the Float nearest h / 10, as the thresholds are):
                    // fg, bg_iou_low, bg_iou_high.
                    let x = gt[0][0].rounded(), y = gt[0][1].rounded()
                    gt[0] = [x, y, x + 10, y + 10]
                    for t in [fg, lo, hi] where t > 0 { props.append([x, y, x + 10, y + (10 * t).rounded()]) }
                    // A duplicate GT of another class.
                    let k = rng.int(below: g)
                    gt.append(gt[k]); classes.append(classes[k] % 3 + 1)
                }
                props += gt
                let (labels, matched) = m.roiHeads.labels(
                    proposals: Self.tensor(props), target: TrainingTarget(boxes: Self.tensor(gt), labels: classes))
                let want = Self.bruteRoI(proposals: props, gt: gt, classes: classes, fg: fg, bgLow: lo, bgHigh: hi)
                XCTAssertEqual(labels, want.labels, "labels, fg \(fg) bg [\(lo), \(hi)) seed \(seed)")
                XCTAssertEqual(matched, want.matched, "matched GT, fg \(fg) bg [\(lo), \(hi)) seed \(seed)")
                let q = gt.map { gb in props.map { Self.iou(gb, $0) } }
                for j in props.indices {
                    let v = gt.isEmpty ? 0 : q.map { $0[j] }.max()!
                    if v >= fg {
                        seen.fg += 1
                    } else if v >= lo && v < hi {
                        seen.bg += 1
                    } else if v < lo {
                        seen.belowLow += 1
                    } else {
                        seen.gap += 1
                    }
                    if v == fg || (v == lo && lo > 0) { seen.exact += 1 }
                    if v >= fg && Set(q.indices.filter { q[$0][j] == v }.map { classes[$0] }).count > 1 {
                        seen.tieClasses += 1
                    }
                }
            }
            XCTAssert(
                seen.fg > 0 && seen.bg > 0 && seen.tieClasses > 0 && seen.exact > 0, "cases not exercised: \(seen)")
            if ProcessInfo.processInfo.environment["LABELLING_VERBOSE"] != nil {
                print("roi fg \(fg) bg [\(lo), \(hi)): \(seen)")
            }
            if lo > 0 { XCTAssertGreaterThan(seen.belowLow, 0, "\(seen)") }
            if hi < fg { XCTAssertGreaterThan(seen.gap, 0, "\(seen)") }
        }
    }
}
