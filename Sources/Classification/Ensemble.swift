import Foundation
import Engine
import Data
import Imaging

/// Several classifiers of the same classes (any depths) tested together: the ensemble's class probabilities
/// are the mean of the members' softmax outputs (each member with its own input settings, crops and scales).
public struct ClassifierEnsemble {
    public let members: [Classifier]
    /// A label per member for reports (e.g. the checkpoint's file name).
    public let names: [String]

    /// Throws when the members disagree on the number of classes or on their class names.
    public init(_ members: [Classifier], names: [String]) throws {
        guard let first = members.first else { throw EnsembleError("an ensemble needs at least one classifier") }
        precondition(names.count == members.count, "one name per member")
        let k = first.model.config.numClasses
        for (m, name) in zip(members, names).dropFirst() {
            guard m.model.config.numClasses == k else {
                throw EnsembleError(
                    "\(name) has \(m.model.config.numClasses) classes but \(names[0]) has \(k): "
                        + "an ensemble averages the scores of the same classes")
            }
            if let differs = zip(first.classNames, m.classNames).enumerated().first(where: {
                $0.element.0 != $0.element.1
            }),
                !first.classNames[0].hasPrefix("class "), !m.classNames[0].hasPrefix("class ")
            {
                throw EnsembleError(
                    "\(name) names class \(differs.offset) \"\(differs.element.1)\" but \(names[0]) names it "
                        + "\"\(differs.element.0)\": the members must have the same classes in the same order")
            }
        }
        self.members = members
        self.names = names
    }

    public var classNames: [String] {
        members.first { !$0.classNames[0].hasPrefix("class ") }?.classNames ?? members[0].classNames
    }

    /// Each member's class probabilities and the ensemble's (their mean).
    public func predict(_ image: RGBImage) throws -> (members: [[Float]], ensemble: [Float]) {
        let each = try members.map { try $0.predict(image).probabilities }
        var mean = [Float](repeating: 0, count: each[0].count)
        for p in each { for j in mean.indices { mean[j] += p[j] / Float(each.count) } }
        return (each, mean)
    }

    /// Top-1 / top-5 error of every member and of the ensemble over an image folder, in one pass over the
    /// images. Images that fail to decode are counted and skipped.
    public func evaluate(_ data: ImageFolderDataset, progress: ((Int) -> Void)? = nil) throws -> EnsembleEvaluation {
        var wrong1 = [Int](repeating: 0, count: members.count + 1), wrong5 = wrong1
        var n = 0
        var skipped: [String] = []
        for (i, url) in data.files.enumerated() {
            progress?(i + 1)
            let img: RGBImage
            do { img = try ImageIO.read(url) } catch { skipped.append("\(error)"); continue }
            let (each, mean) = try predict(img)
            for (m, p) in (each + [mean]).enumerated() {
                let (e1, e5) = Metrics.errors(logits: Tensor(p, shape: [1, p.count]), labels: [data.labels[i]], k: 5)
                wrong1[m] += e1; wrong5[m] += e5
            }
            n += 1
        }
        let rows = (0..<(members.count > 1 ? members.count + 1 : 1)).map { m in
            EnsembleEvaluation.Row(
                name: m < members.count ? names[m] : "ensemble (mean of \(members.count))",
                top1: Double(wrong1[m]) / Double(max(n, 1)), top5: Double(wrong5[m]) / Double(max(n, 1)))
        }
        return EnsembleEvaluation(rows: rows, count: n, skipped: skipped)
    }
}

/// Top-1 / top-5 error of each member and, for two or more, of the ensemble (last row).
public struct EnsembleEvaluation: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var top1: Double
        public var top5: Double
    }
    public var rows: [Row]
    public var count: Int
    public var skipped: [String]

    /// The paper's kind of table: one line per model, errors in percent.
    public var table: String {
        let width = max(8, rows.map(\.name.count).max() ?? 0)
        var s = "model".padding(toLength: width, withPad: " ", startingAt: 0) + "  top-1 err  top-5 err\n"
        for r in rows {
            s +=
                r.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + String(format: "  %8.2f%%  %8.2f%%\n", 100 * r.top1, 100 * r.top5)
        }
        return s + "(\(count) images)\n"
    }

    public var json: [String: Any] {
        [
            "images": count,
            "models": rows.map { ["name": $0.name, "top1_error": $0.top1, "top5_error": $0.top5] as [String: Any] }
        ]
    }
}

public struct EnsembleError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
