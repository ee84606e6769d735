import XCTest
import TestSupport
import Foundation
import Engine
import NN

final class OptimizerTests: XCTestCase {
    /// SGD with momentum, weight decay (and Nesterov, and a mid-run lr change) follows torch.optim.SGD's
    /// parameter trajectory over 10 steps.
    func testSGDMatchesTorchTrajectory() throws {
        let f = try fixture("sgd", target: "EngineTests")
        let configs = try JSONSerialization.jsonObject(with: Data(f.metadata["configs"]!.utf8)) as! [String]
        XCTAssertEqual(configs.count, 3)
        for name in configs {
            let cfg = try JSONSerialization.jsonObject(with: Data(f.metadata[name]!.utf8)) as! [String: Any]
            let schedule = (cfg["lr_schedule"] as! [Double]).map { Float($0) }
            let p0 = try f.tensor("init.p0"), p1 = try f.tensor("init.p1")
            p0.requiresGrad = true; p1.requiresGrad = true
            let opt = SGD(
                parameters: [p0, p1], lr: schedule[0], momentum: Float(cfg["momentum"] as! Double),
                weightDecay: Float(cfg["weight_decay"] as! Double), nesterov: cfg["nesterov"] as! Bool)
            for t in 0..<10 {
                opt.lr = schedule[t]
                p0.grad = try f.tensor("g\(t).p0")
                p1.grad = try f.tensor("g\(t).p1")
                opt.step()
                for (p, n) in [(p0, "p0"), (p1, "p1")] {
                    let ref = try f.tensor("\(name).\(t).\(n)")
                    XCTAssertLessThanOrEqual(p.maxAbsDiff(ref), 1e-6, "\(name) step \(t) \(n)")
                }
            }
        }
    }

    func testSGDSkipsParametersWithoutGradient() {
        let a = Tensor([1, 2], shape: [2], requiresGrad: true), b = Tensor([3], shape: [1], requiresGrad: true)
        let opt = SGD(parameters: [a, b], lr: 0.5, momentum: 0.9, weightDecay: 0.1)
        a.grad = Tensor([1, 1], shape: [2])
        opt.step()
        XCTAssertEqual(b.scalars, [3])
        XCTAssertEqual(a.data[0], 1 - 0.5 * (1 + 0.1 * 1), accuracy: 1e-7)
        XCTAssertNil(opt.momentumBuffers[1])
    }

    func testMultistepWarmupSchedule() {
        let s = LRSchedule(
            baseLR: 0.1, milestones: [32000, 48000], gamma: 0.1, warmupIterations: 100, warmupFactor: 0.01)
        XCTAssertEqual(s.lr(at: 0), 0.001, accuracy: 1e-9)
        XCTAssertEqual(s.lr(at: 50), 0.1 * (0.01 * 0.5 + 0.5), accuracy: 1e-7)
        XCTAssertEqual(s.lr(at: 100), 0.1, accuracy: 1e-9)
        XCTAssertEqual(s.lr(at: 31999), 0.1, accuracy: 1e-9)
        XCTAssertEqual(s.lr(at: 32000), 0.01, accuracy: 1e-9)
        XCTAssertEqual(s.lr(at: 48000), 0.001, accuracy: 1e-9)
    }

    /// The ResNet-110 recipe: 0.01 until the training error is below 80%, then the normal schedule.
    func testLowLRUntilConditionThenReset() {
        var s = LRSchedule(baseLR: 0.1, milestones: [32000], lowLR: .init(lr: 0.01, untilTrainErrorBelow: 0.8))
        XCTAssertEqual(s.lr(at: 10), 0.01)
        s.observeTrainError(0.85)
        XCTAssertEqual(s.lr(at: 400), 0.01)
        s.observeTrainError(0.79)
        XCTAssertEqual(s.lr(at: 401), 0.1)
        s.observeTrainError(0.95)  // once reset, it stays reset
        XCTAssertEqual(s.lr(at: 402), 0.1)
        XCTAssertEqual(s.lr(at: 32000), 0.01, accuracy: 1e-9)
    }

    /// Reduce-on-plateau follows torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min", factor=0.1,
    /// patience=2, threshold=1e-4): the sequence below was traced by hand from torch's rules.
    func testReduceOnPlateau() throws {
        var s = LRSchedule(baseLR: 0.1, plateau: .init(factor: 0.1, patience: 2))
        let metrics: [Float] = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85]
        var lrs: [Float] = []
        for m in metrics { s.observeMetric(m); lrs.append(s.lr(at: 0)) }
        // bad counts: -, 0, 1, 2, 3 -> reduce (reset), 0 (0.8 improves), 1, 2, 3 -> reduce
        let expected: [Float] = [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001]
        for (a, b) in zip(lrs, expected) { XCTAssertEqual(a, b, accuracy: 1e-9) }
        // The state survives encoding (for exact resume).
        let data = try LRSchedule.encoder.encode(s)
        XCTAssertEqual(try JSONDecoder.forSchedules.decode(LRSchedule.self, from: data), s)
    }
}
