import Foundation
import Engine

// Regions of interest for RoIPool / RoIAlign: an (R, 5) tensor whose rows are
// [batchIndex, x1, y1, x2, y2], the box in input-image pixels and the index of its image in the feature
// batch (torchvision's format; the index is stored as a Float holding an integer).

/// (R, 5) RoIs from (R, 4) boxes and the image index of each box.
public func makeRoIs(boxes: Tensor, batchIndices: [Int]) -> Tensor {
    let r = boxCount(boxes, "makeRoIs")
    precondition(batchIndices.count == r, "makeRoIs: \(r) boxes but \(batchIndices.count) batch indices")
    let out = Tensor(uninitialized: [r, 5])
    for i in 0..<r {
        precondition(batchIndices[i] >= 0, "makeRoIs: batch index \(batchIndices[i]) of RoI \(i) is negative")
        out.data[5 * i] = Float(batchIndices[i])
        (out.data + 5 * i + 1).update(from: boxes.data + 4 * i, count: 4)
    }
    return out
}

/// (R, 5) RoIs of a single image: batch index 0 for every box.
public func makeRoIs(boxes: Tensor) -> Tensor {
    makeRoIs(boxes: boxes, batchIndices: [Int](repeating: 0, count: boxCount(boxes, "makeRoIs")))
}

/// Checks the shapes of a RoI operation's inputs and returns each RoI's batch index.
/// features: (N, C, H, W) with H, W > 0; rois: (R, 5) with integral batch indices in 0..<N and finite
/// corners (within +-1e8, so that snapping them to the grid cannot overflow).
func validateRoIInputs(
    _ features: Tensor, _ rois: Tensor, outputSize: (height: Int, width: Int),
    _ function: String, positions: String
) -> [Int] {
    precondition(features.rank == 4, "\(function): features must be (N, C, H, W), got \(features.shape)")
    precondition(features.shape[2] > 0 && features.shape[3] > 0, "\(function): empty feature map \(features.shape)")
    precondition(
        features.shape[2] * features.shape[3] <= Int(Int32.max),
        "\(function): feature map \(features.shape[2])x\(features.shape[3]) too large for 32-bit \(positions)")
    precondition(
        rois.rank == 2 && rois.shape[1] == 5,
        "\(function): rois must be (R, 5) rows [batchIndex, x1, y1, x2, y2], got \(rois.shape)")
    precondition(
        outputSize.height > 0 && outputSize.width > 0,
        "\(function): output size must be positive, got \(outputSize)")
    let n = features.shape[0], r = rois.shape[0], p = rois.data
    return (0..<r).map { i in
        let b = p[5 * i]
        precondition(
            b == b.rounded() && b >= 0 && b < Float(n),
            "\(function): RoI \(i) has batch index \(b), features hold \(n) image(s)")
        for k in 1...4 {
            precondition(
                p[5 * i + k].isFinite && abs(p[5 * i + k]) <= 1e8,
                "\(function): RoI \(i) has coordinate \(p[5 * i + k]) (must be finite, within +-1e8)")
        }
        return Int(b)
    }
}
