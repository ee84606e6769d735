import Foundation
import Engine

/// Encodes ground-truth boxes as regression deltas (dx, dy, dw, dh) relative to reference boxes (anchors
/// or proposals), and decodes deltas back into boxes, with torchvision's `BoxCoder` semantics:
///
///     width = x2 - x1, centre x = x1 + 0.5 * width          (likewise for y; no +1)
///     dx = wx * (gx - px) / pw      dw = ww * log(gw / pw)   (encode)
///     x = dx / wx * pw + px,  w = exp(min(dw / ww, clip)) * pw,  box = centre -/+ 0.5 * size   (decode)
///
/// Every operation is Float32 in torchvision's order, so values agree with it to the last bit or two.
/// Reference boxes of zero width or height give infinite or NaN deltas, as in torchvision; callers remove
/// such boxes first (`removeSmall`). Nothing is recorded for autograd: targets and decoded proposals are
/// constants of the loss.
public struct BoxCoder: Equatable, Sendable {
    /// (wx, wy, ww, wh): the RPN uses (1, 1, 1, 1), the box head (10, 10, 5, 5).
    public let weights: [Float]
    /// Upper clamp of the decoded dw and dh (after dividing by the weights), log(1000 / 16) by default, so
    /// a box grows at most 62.5 times its reference.
    public let scaleClamp: Float

    /// log(1000 / 16), the clamp torchvision and Detectron2 use.
    public static let defaultScaleClamp = Float(Foundation.log(1000.0 / 16.0))

    /// Checks that there are four positive finite weights and a finite clamp.
    public init(weights: [Float] = [1, 1, 1, 1], scaleClamp: Float = BoxCoder.defaultScaleClamp) throws {
        guard weights.count == 4 else {
            throw DetectionError("BoxCoder: weights must be 4 values (wx, wy, ww, wh), got \(weights.count)")
        }
        guard weights.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw DetectionError("BoxCoder: weights must be positive and finite, got \(weights)")
        }
        guard scaleClamp.isFinite else {
            throw DetectionError("BoxCoder: scaleClamp must be finite, got \(scaleClamp)")
        }
        self.weights = weights
        self.scaleClamp = scaleClamp
    }

    /// The RPN's coder: weights (1, 1, 1, 1).
    public static let rpn = try! BoxCoder(weights: [1, 1, 1, 1])
    /// The box head's coder: weights (10, 10, 5, 5).
    public static let roiHead = try! BoxCoder(weights: [10, 10, 5, 5])

    /// Regression targets of `targets` (N, 4) relative to `references` (N, 4) -> (N, 4).
    public func encode(_ targets: Tensor, relativeTo references: Tensor) -> Tensor {
        let n = boxCount(targets, "BoxCoder.encode (targets)")
        precondition(
            boxCount(references, "BoxCoder.encode (references)") == n,
            "BoxCoder.encode: \(n) targets but \(references.shape[0]) reference boxes")
        let out = Tensor(uninitialized: [n, 4])
        let wx = weights[0], wy = weights[1], ww = weights[2], wh = weights[3]
        let g = targets.data, p = references.data, o = out.data
        for i in 0..<n {
            let pw = p[4 * i + 2] - p[4 * i], ph = p[4 * i + 3] - p[4 * i + 1]
            let px = p[4 * i] + 0.5 * pw, py = p[4 * i + 1] + 0.5 * ph
            let gw = g[4 * i + 2] - g[4 * i], gh = g[4 * i + 3] - g[4 * i + 1]
            let gx = g[4 * i] + 0.5 * gw, gy = g[4 * i + 1] + 0.5 * gh
            o[4 * i] = wx * (gx - px) / pw
            o[4 * i + 1] = wy * (gy - py) / ph
            o[4 * i + 2] = ww * Foundation.log(gw / pw)
            o[4 * i + 3] = wh * Foundation.log(gh / ph)
        }
        return out
    }

    /// Boxes from `deltas` (N, 4K) applied to `references` (N, 4) -> (N, 4K): K = 1 for the RPN, K classes
    /// for the class-specific box head (columns 4k..4k+3 are class k's (dx, dy, dw, dh), decoded into
    /// class k's (x1, y1, x2, y2)).
    public func decode(_ deltas: Tensor, relativeTo references: Tensor) -> Tensor {
        let n = boxCount(references, "BoxCoder.decode (references)")
        precondition(
            deltas.rank == 2 && deltas.shape[0] == n && deltas.shape[1] % 4 == 0 && deltas.shape[1] > 0,
            "BoxCoder.decode: deltas must be (N, 4K) with N = \(n) reference boxes, got \(deltas.shape)")
        let k = deltas.shape[1] / 4
        let out = Tensor(uninitialized: deltas.shape)
        let wx = weights[0], wy = weights[1], ww = weights[2], wh = weights[3], clamp = scaleClamp
        let d = deltas.data, p = references.data, o = out.data
        for i in 0..<n {
            let pw = p[4 * i + 2] - p[4 * i], ph = p[4 * i + 3] - p[4 * i + 1]
            let px = p[4 * i] + 0.5 * pw, py = p[4 * i + 1] + 0.5 * ph
            for c in 0..<k {
                let q = 4 * (i * k + c)
                let dx = d[q] / wx, dy = d[q + 1] / wy
                let dw = min(d[q + 2] / ww, clamp), dh = min(d[q + 3] / wh, clamp)
                let cx = dx * pw + px, cy = dy * ph + py
                let halfW = 0.5 * (Foundation.exp(dw) * pw), halfH = 0.5 * (Foundation.exp(dh) * ph)
                o[q] = cx - halfW
                o[q + 1] = cy - halfH
                o[q + 2] = cx + halfW
                o[q + 3] = cy + halfH
            }
        }
        return out
    }
}
