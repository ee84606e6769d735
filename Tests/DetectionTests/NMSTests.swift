import XCTest
import TestSupport
import Engine
import NN
import Detection

final class NMSTests: XCTestCase {
    /// Brute force by the other formulation of greedy NMS: walk boxes by (score desc, index asc); a box is
    /// kept iff no already-kept box overlaps it with Float32 IoU > threshold (compared in Double).
    private func bruteNMS(_ b: [Float], _ s: [Float], _ thr: Double) -> [Int] {
        let order = (0..<s.count).sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }
        func iou(_ i: Int, _ j: Int) -> Float {
            let w = max(0, min(b[4 * i + 2], b[4 * j + 2]) - max(b[4 * i], b[4 * j]))
            let h = max(0, min(b[4 * i + 3], b[4 * j + 3]) - max(b[4 * i + 1], b[4 * j + 1]))
            let ai = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1])
            let aj = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1])
            let inter = w * h
            return inter / (ai + aj - inter)
        }
        var kept: [Int] = []
        for i in order where !kept.contains(where: { Double(iou($0, i)) > thr }) { kept.append(i) }
        return kept
    }

    /// Equal to the plain-python greedy reference of torchvision's kernel: grid boxes with equal scores and
    /// touching edges (thresholds 0.5, 0, 1/3), continuous boxes, hand-made exact-threshold cases, batched.
    func testMatchesPythonReference() throws {
        let (f, cases) = try fixtureCases("nms", expecting: 7)
        for (name, p) in cases {
            let thr = (p["threshold"] as! NSNumber).doubleValue
            let boxes = try f.tensor("\(name).boxes"), scores = try f.tensor("\(name).scores")
            let keep = try ints(f, "\(name).keep")
            let got =
                (p["batched"] as! Bool)
                ? batchedNMS(boxes, scores: scores, classes: try ints(f, "\(name).classes"), iouThreshold: thr)
                : nms(boxes, scores: scores, iouThreshold: thr)
            XCTAssertEqual(got, keep, name)
            if !(p["batched"] as! Bool) {
                XCTAssertEqual(bruteNMS(boxes.scalars, scores.scalars, thr), keep, "\(name) brute force")
                // maxOutputs stops early with the same prefix.
                XCTAssertEqual(nms(boxes, scores: scores, iouThreshold: thr, maxOutputs: 7), Array(keep.prefix(7)))
            }
        }
    }

    /// The cases named in the brief, by hand: IoU exactly at the threshold survives, touching boxes never
    /// suppress each other (even at threshold 0), equal scores go by index.
    func testEdgeCasesByHand() {
        let b = Tensor([0, 0, 2, 1, 0, 0, 1, 1, 1, 0, 2, 1], shape: [3, 4])
        let s = Tensor([0.9, 0.9, 0.9], shape: [3])
        XCTAssertEqual(nms(b, scores: s, iouThreshold: 0.5), [0, 1, 2])  // IoU(0,1) = IoU(0,2) = 0.5
        XCTAssertEqual(nms(b, scores: s, iouThreshold: 0.49), [0])
        XCTAssertEqual(nms(b, scores: Tensor([0.5, 0.9, 0.9], shape: [3]), iouThreshold: 0), [1, 2])  // 1, 2 touch
        let touching = Tensor([0, 0, 1, 1, 1, 0, 2, 1, 0, 1, 1, 2, 1, 1, 2, 2], shape: [4, 4])
        XCTAssertEqual(nms(touching, scores: Tensor([1, 2, 3, 4], shape: [4]), iouThreshold: 0), [3, 2, 1, 0])
        // Duplicates with equal scores: the lower index is kept.
        let dup = Tensor([5, 5, 9, 9, 5, 5, 9, 9], shape: [2, 4])
        XCTAssertEqual(nms(dup, scores: Tensor([0.3, 0.3], shape: [2]), iouThreshold: 0.7), [0])
        XCTAssertEqual(nms(Tensor(zeros: [0, 4]), scores: Tensor(zeros: [0]), iouThreshold: 0.7), [])
    }

    /// Random sets of many sizes (exercising the compaction path) against the brute force.
    func testRandomAgainstBruteForce() {
        var rng = SeededRNG(seed: 21)
        for (n, thr) in [(1, 0.5), (2, 0.5), (65, 0.3), (500, 0.7), (700, 0.5), (900, 0.1)] {
            let boxes = randomBoxes(n, extent: 300, maxSide: 80, rng: &rng)
            // Scores from a small set: many ties.
            let scores = Tensor((0..<n).map { _ in Float(rng.int(below: 20)) / 20 }, shape: [n])
            XCTAssertEqual(
                nms(boxes, scores: scores, iouThreshold: thr), bruteNMS(boxes.scalars, scores.scalars, thr),
                "n \(n) threshold \(thr)")
        }
    }

    /// Batched NMS equals running NMS per class and merging by score.
    func testBatchedIsPerClass() {
        var rng = SeededRNG(seed: 8)
        let n = 300
        let boxes = randomBoxes(n, extent: 200, maxSide: 70, rng: &rng)
        let scores = Tensor((0..<n).map { _ in rng.nextFloat() }, shape: [n])
        let classes = (0..<n).map { _ in rng.int(below: 5) }
        var expected: [Int] = []
        for c in 0..<5 {
            let idx = (0..<n).filter { classes[$0] == c }
            let sub = bruteNMS(
                idx.flatMap { Array(boxes.scalars[(4 * $0)..<(4 * $0 + 4)]) }, idx.map { scores.data[$0] }, 0.5)
            expected += sub.map { idx[$0] }
        }
        expected.sort { scores.data[$0] > scores.data[$1] }
        XCTAssertEqual(batchedNMS(boxes, scores: scores, classes: classes, iouThreshold: 0.5), expected)
        XCTAssertEqual(
            batchedNMS(boxes, scores: scores, classes: classes, iouThreshold: 0.5, maxOutputs: 10),
            Array(expected.prefix(10)))
    }

    func testTopKAndOrder() {
        let s = Tensor([0.1, 0.7, 0.3, 0.7, -2, 0.3], shape: [6])
        XCTAssertEqual(sortedByScore(s), [1, 3, 2, 5, 0, 4])
        XCTAssertEqual(topK(s, 3), [1, 3, 2])
        XCTAssertEqual(topK(s, 10), [1, 3, 2, 5, 0, 4])
        XCTAssertEqual(topK(s, 0), [])
    }
}
