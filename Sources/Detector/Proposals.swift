import Foundation
import Engine
import Detection

/// RPN outputs of one image laid out per anchor: anchor index = (y * W + x) * A + a, matching the anchor
/// generator's order (locations row-major, the A anchors of a location contiguous).
public struct AnchorOutputs {
    /// (H*W*A) objectness logits.
    public let objectness: Tensor
    /// (H*W*A, 4) deltas (dx, dy, dw, dh).
    public let deltas: Tensor

    /// logits: (1, A, H, W), deltas: (1, 4A, H, W) of one image. Differentiable (a permutation to
    /// channels-last and a reshape), so the training losses reach the RPN head through it.
    public init(logits: Tensor, deltas d: Tensor) {
        precondition(logits.shape[0] == 1 && d.shape[0] == 1, "AnchorOutputs: one image at a time, got \(logits.shape)")
        objectness = channelsLast(logits).reshaped([-1])
        deltas = channelsLast(d).reshaped([-1, 4])
    }
}

/// Proposal selection of the RPN (torchvision's filter_proposals for one feature map): the top
/// `preNmsTopK` anchors by objectness, decoded (weights 1, 1, 1, 1, dw/dh clamped), clipped to the image,
/// tiny boxes dropped, NMS, then the first `postNmsTopK`.
public struct ProposalGenerator {
    public var preNmsTopK: Int
    public var postNmsTopK: Int
    public var nmsThreshold: Float
    public var minSize: Float
    public init(preNmsTopK: Int, postNmsTopK: Int, nmsThreshold: Float, minSize: Float) {
        self.preNmsTopK = preNmsTopK; self.postNmsTopK = postNmsTopK; self.nmsThreshold = nmsThreshold;
        self.minSize = minSize
    }

    /// Proposals (P, 4) in input-image pixels and their objectness logits, best first.
    public func callAsFunction(_ out: AnchorOutputs, anchors: Tensor, imageSize: (height: Int, width: Int)) -> (
        boxes: Tensor, scores: [Float]
    ) {
        // A diverged network can produce NaN objectness; such anchors rank last instead of stopping the sort.
        var objectness = out.objectness
        if (0..<objectness.count).contains(where: { objectness.data[$0].isNaN }) {
            objectness = objectness.copy()
            for i in 0..<objectness.count where objectness.data[i].isNaN { objectness.data[i] = -.infinity }
        }
        let top = topK(objectness, preNmsTopK)
        let decoded = BoxCoder.rpn.decode(selectRows(out.deltas, top), relativeTo: selectRows(anchors, top))
        let boxes = clipBoxes(decoded, to: imageSize)
        let big = removeSmall(boxes, minSize: minSize)
        let cand = selectRows(boxes, big)
        let candScores = Tensor(big.map { objectness.data[top[$0]] }, shape: [big.count])
        let keep = nms(cand, scores: candScores, iouThreshold: Double(nmsThreshold), maxOutputs: postNmsTopK)
        return (selectRows(cand, keep), keep.map { candScores.data[$0] })
    }
}

extension AnchorOutputs {
    init(objectness: Tensor, deltas: Tensor) { self.objectness = objectness; self.deltas = deltas }
}
