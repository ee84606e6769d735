import Foundation

/// Learning-rate schedule by iteration, composed of the pieces the ResNet and Faster R-CNN recipes use:
///
/// - multistep: `base * gamma^k`, k = number of milestones <= iteration (torch's MultiStepLR stepped per
///   iteration);
/// - linear warm-up over the first `warmupIterations`: factor `warmupFactor * (1 - a) + a`, a = it / warmup
///   (Detectron2's WarmupMultiStepLR);
/// - a low-LR phase: use `lowLR` until the training error first falls below a threshold, then continue with
///   the normal schedule (the ResNet-110 recipe: 0.01 until training error < 80%, then 0.1);
/// - reduce-on-plateau: divide by `1/factor` when a monitored metric has not improved for `patience` checks
///   (torch's ReduceLROnPlateau in "min" mode with a relative threshold).
///
/// The whole state is Codable so that a resumed run continues with exactly the same rates.
public struct LRSchedule: Codable, Equatable, Sendable {
    public var baseLR: Float
    public var milestones: [Int] = []
    public var gamma: Float = 0.1
    public var warmupIterations: Int = 0
    public var warmupFactor: Float = 0.001
    public var lowLR: LowLRPhase? = nil
    public var plateau: Plateau? = nil

    public struct LowLRPhase: Codable, Equatable, Sendable {
        public var lr: Float
        public var untilTrainErrorBelow: Float
        public var finished = false
        public init(lr: Float, untilTrainErrorBelow: Float) {
            self.lr = lr; self.untilTrainErrorBelow = untilTrainErrorBelow
        }
    }

    public struct Plateau: Codable, Equatable, Sendable {
        public var factor: Float = 0.1
        public var patience: Int = 10
        public var threshold: Float = 1e-4
        public var minLR: Float = 0
        public var best: Float = .infinity
        public var badChecks = 0
        public var scale: Float = 1
        public init(factor: Float = 0.1, patience: Int = 10, threshold: Float = 1e-4, minLR: Float = 0) {
            self.factor = factor; self.patience = patience; self.threshold = threshold; self.minLR = minLR
        }
    }

    public init(
        baseLR: Float, milestones: [Int] = [], gamma: Float = 0.1, warmupIterations: Int = 0,
        warmupFactor: Float = 0.001, lowLR: LowLRPhase? = nil, plateau: Plateau? = nil
    ) {
        self.baseLR = baseLR; self.milestones = milestones.sorted(); self.gamma = gamma
        self.warmupIterations = warmupIterations; self.warmupFactor = warmupFactor
        self.lowLR = lowLR; self.plateau = plateau
    }

    /// The learning rate for (0-based) iteration `iteration`.
    public func lr(at iteration: Int) -> Float {
        if let low = lowLR, !low.finished { return low.lr }
        var lr = baseLR
        for m in milestones where iteration >= m { lr *= gamma }
        if iteration < warmupIterations {
            let a = Float(iteration) / Float(warmupIterations)
            lr *= warmupFactor * (1 - a) + a
        }
        if let p = plateau { lr = max(lr * p.scale, p.minLR) }
        return lr
    }

    /// Reports the current training error (fraction in [0, 1]); ends the low-LR phase when it is reached.
    public mutating func observeTrainError(_ error: Float) {
        if var low = lowLR, !low.finished, error < low.untilTrainErrorBelow {
            low.finished = true
            lowLR = low
        }
    }

    /// Reports a monitored metric (lower is better, e.g. validation error) for reduce-on-plateau.
    public mutating func observeMetric(_ value: Float) {
        guard var p = plateau else { return }
        if value < p.best * (1 - p.threshold) {
            p.best = value
            p.badChecks = 0
        } else {
            p.badChecks += 1
            if p.badChecks > p.patience {
                p.scale *= p.factor
                p.badChecks = 0
            }
        }
        plateau = p
    }
}

extension LRSchedule {
    /// A JSON encoder for schedule state (infinite "best" values are written as strings).
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

extension JSONDecoder {
    /// The decoder matching `LRSchedule.encoder`.
    public static var forSchedules: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
