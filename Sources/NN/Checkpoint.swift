import Foundation
import Engine

/// What a state-dict load found: names the model wants but the file lacks, names the file has but the
/// model does not know, and names whose shapes differ.
public struct LoadReport: Equatable, Sendable {
    public var loaded: [String] = []
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var mismatched: [String] = []  // "name: model [..] vs file [..]"
    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }

    public var summary: String {
        var parts: [String] = []
        func list(_ title: String, _ xs: [String]) {
            guard !xs.isEmpty else { return }
            let shown = xs.prefix(20).joined(separator: ", ")
            parts.append("\(xs.count) \(title): \(shown)\(xs.count > 20 ? ", ..." : "")")
        }
        list("missing", missing)
        list("unexpected", unexpected)
        list("mis-shaped", mismatched)
        return parts.joined(separator: "; ")
    }
}

extension Module {
    /// Parameters and float buffers, then integer buffers, as a safetensors writer with `metadata`.
    public func stateWriter(metadata: [String: String] = [:], prefix: String = "") -> SafeTensorsWriter {
        var w = SafeTensorsWriter(metadata: metadata)
        for (n, t) in namedParameters(prefix: prefix) { w.add(n, t) }
        for (n, t) in namedBuffers(prefix: prefix) { w.add(n, t) }
        for (n, b) in namedIntBuffers(prefix: prefix) { w.add(n, int64: b.value) }
        return w
    }

    /// Saves parameters and buffers as a safetensors checkpoint (atomically).
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        try stateWriter(metadata: metadata).write(to: url)
    }

    /// Loads parameters and buffers by name. `strict` (the default) refuses any missing, unexpected or
    /// mis-shaped name and reports all of them at once, changing nothing; non-strict loads every name that
    /// matches and returns the report, but still refuses mis-shaped tensors.
    /// `prefix` is prepended to this module's names when looking them up in the file.
    @discardableResult
    public func load(
        _ file: SafeTensorsFile, strict: Bool = true, prefix: String = "",
        ignoreUnexpected: (String) -> Bool = { _ in false }
    ) throws -> LoadReport {
        var report = LoadReport()
        let params = namedParameters(prefix: prefix) + namedBuffers(prefix: prefix)
        let ints = namedIntBuffers(prefix: prefix)
        var known = Set<String>()
        var plan: [(Tensor, String)] = []
        for (name, t) in params {
            known.insert(name)
            guard let e = file.entries[name] else { report.missing.append(name); continue }
            if e.shape != t.shape && !(e.count == t.count && e.count == 1) {
                report.mismatched.append("\(name): model \(t.shape) vs file \(e.shape)")
                continue
            }
            if [.i64, .i32, .u8, .bool].contains(e.dtype) {
                report.mismatched.append("\(name): expected a float tensor, file has \(e.dtype.rawValue)")
                continue
            }
            plan.append((t, name))
        }
        var intPlan: [(IntBuffer, String)] = []
        for (name, b) in ints {
            known.insert(name)
            guard let e = file.entries[name] else {
                // torch checkpoints from before num_batches_tracked existed lack it; that is harmless.
                continue
            }
            guard e.count == 1 else { report.mismatched.append("\(name): model [] vs file \(e.shape)"); continue }
            intPlan.append((b, name))
        }
        report.unexpected = file.names.filter {
            !known.contains($0) && (prefix.isEmpty || $0.hasPrefix(prefix)) && !ignoreUnexpected($0)
        }
        if !report.mismatched.isEmpty || (strict && !report.isComplete) {
            throw CheckpointError(file: file.path, "does not match the model: \(report.summary)")
        }
        // Read everything first so that a failure leaves the model unchanged.
        var values: [(Tensor, Tensor)] = []
        for (t, name) in plan {
            let v = try file.tensor(name)
            // A diverged run's checkpoint (NaN or infinite weights) would train on silently or detect nothing.
            if let i = (0..<v.count).first(where: { !v.data[$0].isFinite }) {
                throw CheckpointError(
                    file: file.path,
                    "tensor \(name) holds \(v.data[i]) at element \(i): refusing weights that are "
                        + "not finite numbers (a diverged training run?)")
            }
            values.append((t, v))
        }
        var intValues: [(IntBuffer, Int64)] = []
        for (b, name) in intPlan {
            if let e = file.entries[name], [.i64, .i32, .u8, .bool].contains(e.dtype) {
                intValues.append((b, try file.integers(name)[0]))
            } else {
                intValues.append((b, Int64(try file.tensor(name).data[0])))
            }
        }
        for (t, v) in values { t.data.update(from: v.data, count: t.count) }
        for (b, v) in intValues { b.value = v }
        invalidateInferencePlans()
        report.loaded = plan.map { $0.1 } + intPlan.map { $0.1 }
        return report
    }
}
