import Foundation
import Support
import Engine

/// The RoI feature extractor of the box head, chosen by configuration: Fast R-CNN max pooling (the ResNet
/// paper's choice) or aligned RoIAlign with adaptive sampling. Raw values match the recipe strings.
public enum RoIPoolerKind: String, ChoiceField {
    /// `roiPool`: corners rounded to the feature grid, max per bin.
    case roipool
    /// `roiAlign(aligned: true)`: bilinear samples averaged per bin.
    case roialign
}

/// Extracts fixed-size features for RoIs from one feature map (the C4 trunk: stride 16, 14x14 per RoI).
public struct RoIPooler: Equatable, Sendable {
    public let kind: RoIPoolerKind
    public let outputSize: Int
    /// 1 / stride of the feature map relative to the input image.
    public let spatialScale: Float
    /// RoIAlign only: samples per bin and axis; <= 0 for adaptive (ceil(roi size / output size)).
    public let samplingRatio: Int

    public init(
        kind: RoIPoolerKind, outputSize: Int = 14, spatialScale: Float = 1.0 / 16,
        samplingRatio: Int = 0
    ) throws {
        guard outputSize > 0 else { throw DetectionError("RoIPooler: outputSize must be positive, got \(outputSize)") }
        guard spatialScale > 0 && spatialScale.isFinite else {
            throw DetectionError("RoIPooler: spatialScale must be positive and finite, got \(spatialScale)")
        }
        self.kind = kind
        self.outputSize = outputSize
        self.spatialScale = spatialScale
        self.samplingRatio = samplingRatio
    }

    /// features: (N, C, H, W), rois: (R, 5) [batchIndex, x1, y1, x2, y2] -> (R, C, outputSize, outputSize), or
    /// (R, outputSize, outputSize, C) without gradient when `channelsLast`.
    public func callAsFunction(_ features: Tensor, rois: Tensor, channelsLast: Bool = false) -> Tensor {
        switch kind {
        case .roipool:
            return roiPool(
                features, rois: rois, outputSize: (outputSize, outputSize), spatialScale: spatialScale,
                channelsLast: channelsLast)
        case .roialign:
            return roiAlign(
                features, rois: rois, outputSize: (outputSize, outputSize), spatialScale: spatialScale,
                samplingRatio: samplingRatio, aligned: true, channelsLast: channelsLast)
        }
    }
}
