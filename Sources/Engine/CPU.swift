import Foundation
import CKernels

/// The instruction-set level the engine's kernels run with (`Sources/CKernels/cpu.c` is the one dispatch
/// layer: each kernel with architecture-specific code has an AVX-512, an AVX2 + FMA and a baseline variant and
/// picks one from the active level).
///
/// The active level is the best the CPU supports, capped by the environment variable
/// `ENGINE_ISA=avx512|avx2|baseline` (so that the lower paths can be run and benchmarked on a bigger CPU) or by
/// `InstructionSet.limit(to:)`. At the baseline level the engine's GEMM hands products to OpenBLAS (which
/// picks its own kernel; `OPENBLAS_CORETYPE` forces that one).
public enum InstructionSet: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case baseline = 0
    case avx2 = 1
    case avx512 = 2

    public var description: String { String(cString: ck_isa_name(Int32(rawValue))) }

    /// "avx512", "avx2" or "baseline".
    public init?(name: String) {
        let v = ck_isa_from_name(name.lowercased())
        guard v >= 0, let s = InstructionSet(rawValue: Int(v)) else { return nil }
        self = s
    }

    public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.rawValue < b.rawValue }

    /// The best level this CPU supports.
    public static var supported: InstructionSet { InstructionSet(rawValue: Int(ck_cpu_isa())) ?? .baseline }

    /// The level the kernels use now.
    public static var active: InstructionSet { InstructionSet(rawValue: Int(ck_isa())) ?? .baseline }

    /// Caps the level for the whole process (a cap above `supported` gives `supported`) and returns the level
    /// now active. Set it before work starts, not while kernels run on other threads.
    @discardableResult
    public static func limit(to level: InstructionSet) -> InstructionSet {
        InstructionSet(rawValue: Int(ck_set_isa(Int32(level.rawValue)))) ?? .baseline
    }

    /// The levels this CPU can run, lowest first.
    public static var runnable: [InstructionSet] { allCases.filter { $0 <= supported } }

    /// Runs `body` once per runnable level, with that level forced, then restores the level that was active.
    public static func forEachRunnable(_ body: (InstructionSet) throws -> Void) rethrows {
        let saved = active
        defer { limit(to: saved) }
        for level in runnable {
            limit(to: level)
            try body(level)
        }
    }

    /// The CPU's model name and its vector features ("AMD EPYC 7B13 (avx avx2 fma)"), for benchmark reports.
    public static var cpuDescription: String {
        var model = "unknown CPU", flags: Set<Substring> = []
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in info.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let key = parts[0].trimmingCharacters(in: .whitespaces),
                    value = parts[1].trimmingCharacters(in: .whitespaces)
                if key == "model name" && model == "unknown CPU" { model = value }
                if key == "flags" || key == "Features" { flags.formUnion(value.split(separator: " ")) }
            }
        }
        let interesting = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "asimd"]
        let present = interesting.filter { flags.contains(Substring($0)) }
        return "\(model) (\(present.joined(separator: " ")))"
    }

    /// The arithmetic ceiling at the active level, measured: GFLOP/s of `threads` threads each running
    /// independent vector FMA chains (no memory traffic), best of three rounds of about 0.1 s.
    public static func measuredPeakGFLOPS(threads: Int = Threading.threads) -> Double {
        let iters = 10_000_000
        var best = 0.0
        for _ in 0..<3 {
            var flops = [Double](repeating: 0, count: threads)
            let t0 = DispatchTime.now().uptimeNanoseconds
            flops.withUnsafeMutableBufferPointer { f in
                let fp = f.baseAddress!
                Threading.parallelFor(threads) { k in
                    var sink: Float = 0
                    fp[k] = ck_peak_flops_loop(iters, &sink)
                    if sink.isNaN { fp[k] = 0 }
                }
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            best = max(best, flops.reduce(0, +) / dt / 1e9)
        }
        return best
    }

    /// One line for benchmark output: the CPU, the level it supports and the level in use.
    public static var report: String {
        "CPU: \(cpuDescription); kernels: \(active) (CPU supports \(supported)"
            + (active < supported ? ", capped by ENGINE_ISA or a limit)" : ")")
    }
}
