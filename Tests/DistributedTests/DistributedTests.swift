import XCTest
import Foundation
import Engine
import NN
import Cluster
import Data
import TestSupport

/// The commands as MPI jobs (`mpirun -np 2`) against the same commands as one process: data-parallel
/// fine-tuning and training give the same losses and weights, resumes cross process counts, sharded detection
/// and evaluation give the same files, a killed rank ends the job, and bad input gets one clear message.
/// Every process runs one engine thread, so one process and two processes sum in the same order per image.
final class DistributedTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A generated VOC set (8 training, 2 validation, 4 test images), made once.
    static let dataset: URL? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distributed-voc-\(getpid())")
        guard
            let r = try? CommandRunner.run(
                "make-dataset",
                [
                    "--kind", "detection", "--out", dir.path, "--images", "8",
                    "--val", "2", "--test", "4"
                ]), r.status == 0
        else { return nil }
        return dir.appendingPathComponent("VOC")
    }()

    func voc() throws -> URL {
        _ = try MPIRunner.mpirun()
        guard let d = Self.dataset else { throw XCTSkip("make-dataset is not built next to the tests") }
        return d
    }

    /// The R18-small recipe at a CPU-test size: 2 images per step, one per forward pass.
    func finetuneArgs(_ data: URL, out: URL, iterations: Int, extra: [String] = []) -> [String] {
        [
            "--config", Self.repo.appendingPathComponent("configs/detector_r18_small.yaml").path, "--data", data.path,
            "--out", out.path, "--iterations", String(iterations), "--threads", "1",
            "--set", "solver.ims_per_batch=2", "--set", "solver.images_per_forward=1", "--set", "data.split=train",
            "--set", "data.val_split=val", "--set", "solver.validate_every=10", "--set", "solver.checkpoint_every=10",
            "--set", "detector.input.min_size=160", "--set", "detector.input.max_size=256", "--set",
            "solver.scales=[144,160]"
        ] + extra
    }

    func logLines(_ url: URL) throws -> [[String: Double]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return o.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    /// Relative L2 distance over every floating-point tensor of two checkpoints (same names required).
    func relativeDistance(_ a: URL, _ b: URL) throws -> Double {
        let fa = try SafeTensorsFile(contentsOf: a), fb = try SafeTensorsFile(contentsOf: b)
        XCTAssertEqual(Set(fa.names), Set(fb.names))
        var num = 0.0, den = 0.0
        for name in fa.names where fa.entries[name]!.dtype == .f32 {
            let x = try fa.tensor(name), y = try fb.tensor(name)
            for i in 0..<x.count {
                let d = Double(x.data[i]) - Double(y.data[i]); num += d * d;
                den += Double(x.data[i]) * Double(x.data[i])
            }
        }
        return (num / max(den, 1e-30)).squareRoot()
    }

    func assertLogsClose(
        _ a: [[String: Double]], _ b: [[String: Double]], _ tolerance: Double, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(a.count, b.count, "log lines", file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(Set(x.keys), Set(y.keys), file: file, line: line)
            for (k, v) in x where k != "iteration" {
                let w = y[k] ?? .nan
                XCTAssertLessThanOrEqual(
                    abs(v - w), tolerance * max(abs(v), 1e-6), "iteration \(x["iteration"] ?? -1) \(k): \(v) vs \(w)",
                    file: file, line: line)
            }
        }
    }

    /// Acceptance 1 and 3: 20 iterations of 2 images, one process vs two; two 2-process runs bit-identical;
    /// resumes from a 2-process checkpoint with one process and the reverse reach the uninterrupted weights.
    func testFinetuneOverTwoProcessesEqualsOneProcessAndResumesAcrossProcessCounts() throws {
        let data = try voc(), dir = try makeScratchFolder("dp-finetune")
        func out(_ n: String) -> URL { dir.appendingPathComponent(n) }
        let one = try CommandRunner.run("finetune", finetuneArgs(data, out: out("one"), iterations: 20))
        XCTAssertEqual(one.status, 0, one.stderr)
        for name in ["two", "two-again"] {
            let r = try MPIRunner.run(2, "finetune", finetuneArgs(data, out: out(name), iterations: 20))
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("on 2 processes"), r.stdout)
        }
        let logOne = try logLines(out("one/log.jsonl")), logTwo = try logLines(out("two/log.jsonl"))
        XCTAssertEqual(logOne.filter { $0["loss"] != nil }.count, 20)
        XCTAssertEqual(logOne.filter { $0["map"] != nil }.count, 2, "validation at 10 and 20")
        assertLogsClose(logOne, logTwo, 1e-4)
        let final = "model_final.safetensors"
        let distance = try relativeDistance(out("one/\(final)"), out("two/\(final)"))
        print("finetune: 2 processes vs 1, relative L2 distance of the final weights \(distance)")
        XCTAssertLessThanOrEqual(distance, 1e-4)
        XCTAssertEqual(
            try Data(contentsOf: out("two/\(final)")), try Data(contentsOf: out("two-again/\(final)")),
            "two 2-process runs are bit-identical")
        XCTAssertEqual(try Data(contentsOf: out("two/log.jsonl")), try Data(contentsOf: out("two-again/log.jsonl")))

        // 10 iterations on two processes, the other 10 on one; and the reverse.
        let a = try MPIRunner.run(2, "finetune", finetuneArgs(data, out: out("resume-a"), iterations: 10))
        XCTAssertEqual(a.status, 0, a.stderr)
        let a2 = try CommandRunner.run(
            "finetune",
            finetuneArgs(
                data, out: out("resume-a"), iterations: 20,
                extra: ["--resume", out("resume-a/checkpoint.safetensors").path]))
        XCTAssertEqual(a2.status, 0, a2.stderr)
        let b = try CommandRunner.run("finetune", finetuneArgs(data, out: out("resume-b"), iterations: 10))
        XCTAssertEqual(b.status, 0, b.stderr)
        let b2 = try MPIRunner.run(
            2, "finetune",
            finetuneArgs(
                data, out: out("resume-b"), iterations: 20,
                extra: ["--resume", out("resume-b/checkpoint.safetensors").path]))
        XCTAssertEqual(b2.status, 0, b2.stderr)
        for name in ["resume-a", "resume-b"] {
            XCTAssertLessThanOrEqual(try relativeDistance(out("one/\(final)"), out("\(name)/\(final)")), 1e-4, name)
            assertLogsClose(logOne, try logLines(out("\(name)/log.jsonl")), 1e-4)
        }
        // Only rank 0 wrote: the output folder holds exactly one run's files.
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: out("two").path)),
            Set(try FileManager.default.contentsOfDirectory(atPath: out("one").path)))
    }

    /// The generated 10-class shape set written as a CIFAR-10 binary batch (label byte + 3072 pixel bytes).
    func writeCIFAR(_ url: URL, records: Int) throws {
        let shapes = SyntheticShapes.make(count: records, seed: 7)
        var bytes = [UInt8]()
        for i in 0..<records {
            bytes.append(UInt8(shapes.labels[i]))
            bytes += shapes.pixels[i * 3072..<(i + 1) * 3072]
        }
        try Data(bytes).write(to: url)
    }

    /// Acceptance 2: 5 iterations of batch 32 with `sync_bn`: two processes equal one; per-rank batch norm runs.
    func testTrainWithSyncBNOverTwoProcessesEqualsOneProcess() throws {
        _ = try MPIRunner.mpirun()
        let dir = try makeScratchFolder("dp-train")
        let bin = dir.appendingPathComponent("data_batch.bin")
        try writeCIFAR(bin, records: 256)
        func args(_ name: String, _ extra: [String]) -> [String] {
            [
                "--arch", "cifar_resnet8", "--data", bin.path, "--iterations", "5", "--batch", "32", "--threads", "1",
                "--set", "train.validate_every=0", "--set", "train.warmup_iterations=0",
                "--log", dir.appendingPathComponent("\(name).jsonl").path,
                "--save", dir.appendingPathComponent("\(name).safetensors").path
            ] + extra
        }
        let one = try CommandRunner.run("train", args("one", ["--set", "train.sync_bn=true"]))
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try MPIRunner.run(2, "train", args("two", ["--set", "train.sync_bn=true"]))
        XCTAssertEqual(two.status, 0, two.stderr)
        let perRank = try MPIRunner.run(2, "train", args("per-rank", []))
        XCTAssertEqual(perRank.status, 0, perRank.stderr)
        func url(_ n: String, _ ext: String) -> URL { dir.appendingPathComponent("\(n).\(ext)") }
        let logOne = try logLines(url("one", "jsonl"))
        XCTAssertEqual(logOne.filter { $0["loss"] != nil }.count, 5)
        assertLogsClose(logOne, try logLines(url("two", "jsonl")), 1e-4)
        let syncDistance = try relativeDistance(url("one", "safetensors"), url("two", "safetensors"))
        print("train, sync BN: 2 processes vs 1, relative L2 distance of the weights \(syncDistance)")
        XCTAssertLessThanOrEqual(syncDistance, 1e-4)
        // Per-rank statistics: the first step normalises 16 images per rank instead of 32, so the run differs.
        let logPerRank = try logLines(url("per-rank", "jsonl"))
        XCTAssertEqual(logPerRank.count, logOne.count)
        XCTAssertTrue(logPerRank.allSatisfy { $0["loss"].map(\.isFinite) ?? true })
        let perRankDistance = try relativeDistance(url("one", "safetensors"), url("per-rank", "safetensors"))
        print("train, per-process BN: 2 processes vs 1 (sync), relative L2 distance of the weights \(perRankDistance)")
        XCTAssertGreaterThan(perRankDistance, 1e-4)
    }

    /// Acceptance 4: detect over a folder and evaluate --weights on two processes write the same files and
    /// numbers as one process.
    func testShardedDetectAndEvaluateEqualOneProcess() throws {
        let data = try voc(), dir = try makeScratchFolder("dp-detect")
        let weights = Self.repo.appendingPathComponent("weights/detector.safetensors").path
        func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
        let images = data.appendingPathComponent("JPEGImages").path
        let one = try CommandRunner.run(
            "detect", [images, "--weights", weights, "--threads", "1", "--json", path("one.json"), "--out", path("one")]
        )
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try MPIRunner.run(
            2, "detect",
            [images, "--weights", weights, "--threads", "1", "--json", path("two.json"), "--out", path("two")])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: path("one.json"))),
            try Data(contentsOf: URL(fileURLWithPath: path("two.json"))))
        let pictures = try FileManager.default.contentsOfDirectory(atPath: path("one")).sorted()
        XCTAssertEqual(pictures.count, 14)
        XCTAssertEqual(pictures, try FileManager.default.contentsOfDirectory(atPath: path("two")).sorted())
        for p in pictures {
            XCTAssertEqual(
                try Data(contentsOf: URL(fileURLWithPath: path("one/\(p)"))),
                try Data(contentsOf: URL(fileURLWithPath: path("two/\(p)"))), p)
        }
        // The tables on stdout, image by image, are the same (only the paths of the pictures differ).
        XCTAssertEqual(
            one.stdout.replacingOccurrences(of: path("one"), with: "OUT").replacingOccurrences(
                of: "one.json", with: "J"),
            two.stdout.replacingOccurrences(of: path("two"), with: "OUT").replacingOccurrences(
                of: "two.json", with: "J"))

        let common = [
            "--weights", weights, "--gt", data.path, "--split", "test", "--classes",
            data.appendingPathComponent("classes.txt").path,
            "--metric", "voc", "--threads", "1"
        ]
        let e1 = try CommandRunner.run("evaluate", common + ["--json", path("e1.json"), "--save-dets", path("d1.json")])
        XCTAssertEqual(e1.status, 0, e1.stderr)
        let e2 = try MPIRunner.run(2, "evaluate", common + ["--json", path("e2.json"), "--save-dets", path("d2.json")])
        XCTAssertEqual(e2.status, 0, e2.stderr)
        XCTAssertEqual(e1.stdout, e2.stdout)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: path("e1.json"))),
            try Data(contentsOf: URL(fileURLWithPath: path("e2.json"))))
    }

    /// Acceptance 5: SIGKILL of rank 1 mid-run ends the job within 30 s, non-zero, naming the rank; the last
    /// checkpoint loads and resumes.
    func testKilledRankEndsTheJobAndTheCheckpointSurvives() throws {
        let data = try voc(), dir = try makeScratchFolder("dp-kill")
        let out = dir.appendingPathComponent("run")
        let p = try MPIRunner.process([
            (
                2, "finetune",
                finetuneArgs(
                    data, out: out, iterations: 1000,
                    extra: ["--set", "solver.checkpoint_every=2", "--set", "solver.validate_every=0"])
            )
        ])
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let checkpoint = out.appendingPathComponent("checkpoint.safetensors")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint.path) && Date() < deadline && p.isRunning {
            usleep(100_000)
        }
        XCTAssertTrue(p.isRunning, "the job is still running when the first checkpoint appears")
        // The process of rank 1: a finetune whose environment says OMPI_COMM_WORLD_RANK=1.
        var victim: Int32? = nil
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(entry), let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                String(decoding: cmd, as: UTF8.self).contains("finetune")
            else { continue }
            if env.split(separator: 0).contains(where: {
                String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=1"
            }) {
                victim = pid
            }
        }
        let pid = try XCTUnwrap(victim, "rank 1's process")
        let killed = Date()
        kill(pid, SIGKILL)
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertLessThan(seconds, 30)
        XCTAssertNotEqual(p.terminationStatus, 0)
        let text = String(decoding: stderrData, as: UTF8.self)
        XCTAssertTrue(text.contains("rank 1"), text)
        let file = try SafeTensorsFile(contentsOf: checkpoint)
        let iteration = try XCTUnwrap(file.metadata["iteration"].flatMap(Int.init))
        XCTAssertGreaterThanOrEqual(iteration, 2)
        XCTAssertEqual(iteration % 2, 0)
        let resumed = try CommandRunner.run(
            "finetune",
            finetuneArgs(
                data, out: out, iterations: iteration + 1,
                extra: ["--resume", checkpoint.path, "--set", "solver.validate_every=0"]))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: out.appendingPathComponent("model_final.safetensors").path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [], "no temporary files left")
    }

    /// Bad input: a batch that does not divide among the ranks, ranks with different recipes or weights:
    /// one clear message each, the job ends non-zero, nothing written.
    func testBadInputOverSeveralProcesses() throws {
        let data = try voc(), dir = try makeScratchFolder("dp-bad")
        let out = dir.appendingPathComponent("odd")
        let odd = try MPIRunner.run(
            2, "finetune", finetuneArgs(data, out: out, iterations: 2, extra: ["--set", "solver.ims_per_batch=3"]))
        XCTAssertNotEqual(odd.status, 0)
        XCTAssertTrue(
            odd.stderr.contains("solver.ims_per_batch 3 does not divide evenly among 2 processes"), odd.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written")

        let bin = dir.appendingPathComponent("data.bin")
        try writeCIFAR(bin, records: 64)
        let train = try MPIRunner.run(
            2, "train", ["--arch", "cifar_resnet8", "--data", bin.path, "--iterations", "1", "--batch", "31"])
        XCTAssertNotEqual(train.status, 0)
        XCTAssertTrue(
            train.stderr.contains("train.batch_size 31 does not divide evenly among 2 processes"), train.stderr)

        // MPMD: rank 1 gets another learning rate.
        let base = finetuneArgs(data, out: dir.appendingPathComponent("mixed"), iterations: 2)
        let mixed = try MPIRunner.run([(1, "finetune", base), (1, "finetune", base + ["--lr", "0.5"])])
        XCTAssertNotEqual(mixed.status, 0)
        XCTAssertTrue(mixed.stderr.contains("rank 1 runs another recipe than rank 0"), mixed.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("mixed/checkpoint.safetensors").path))

        // Rank 1 resumes from another checkpoint than rank 0: different weights.
        let short = dir.appendingPathComponent("short")
        XCTAssertEqual(try CommandRunner.run("finetune", finetuneArgs(data, out: short, iterations: 2)).status, 0)
        let other = dir.appendingPathComponent("other")
        XCTAssertEqual(
            try CommandRunner.run(
                "finetune", finetuneArgs(data, out: other, iterations: 2, extra: ["--set", "solver.seed=5"])
            ).status, 0)
        let resumeArgs = finetuneArgs(data, out: dir.appendingPathComponent("resumed"), iterations: 4)
        let differ = try MPIRunner.run([
            (1, "finetune", resumeArgs + ["--resume", short.appendingPathComponent("checkpoint.safetensors").path]),
            (1, "finetune", resumeArgs + ["--resume", other.appendingPathComponent("checkpoint.safetensors").path])
        ])
        XCTAssertNotEqual(differ.status, 0)
        XCTAssertTrue(differ.stderr.contains("rank 1 loaded other weights than rank 0"), differ.stderr)
    }

    /// The pieces without a launcher: how a launch is recognised, and how work is split into blocks.
    func testLaunchDetectionAndBlocks() {
        XCTAssertNil(Cluster.declaredSize([:]))
        XCTAssertEqual(Cluster.declaredSize(["OMPI_COMM_WORLD_SIZE": "4"]), 4)
        XCTAssertEqual(Cluster.declaredSize(["PMI_SIZE": "3"]), 3)
        XCTAssertTrue(Cluster.supportsMPI)
        final class Fake: Communicator {
            let rank: Int, size: Int
            init(_ r: Int, _ s: Int) { rank = r; size = s }
            func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
            func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
            func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
            func allGather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
        }
        for n in 0..<20 {
            for size in 1...5 {
                let blocks = (0..<size).map { Fake($0, size).block(of: n) }
                // Contiguous, in rank order, covering 0..<n, lengths differing by at most one.
                XCTAssertEqual(blocks.flatMap { Array($0) }, Array(0..<n))
                XCTAssertLessThanOrEqual(blocks.map(\.count).max()! - blocks.map(\.count).min()!, 1)
            }
        }
    }
}
