import XCTest
import TestSupport
import Foundation
import Engine
import NN

/// A tiny model with nested names to test naming, save and strict load.
final class TinyNet: Module {
    let conv1: Conv2d, bn1: BatchNorm2d, layer1: Sequential, fc: Linear
    init(seed: UInt64, classes: Int = 3) {
        var rng = SeededRNG(seed: seed)
        conv1 = Conv2d(3, 4, kernel: 3, padding: 1, rng: &rng)
        bn1 = BatchNorm2d(4)
        layer1 = Sequential([Conv2d(4, 4, kernel: 1, rng: &rng), BatchNorm2d(4)])
        fc = Linear(4, classes, rng: &rng)
        super.init()
    }
    override var children: [(String, Module)] { [("conv1", conv1), ("bn1", bn1), ("layer1", layer1), ("fc", fc)] }
}

final class CheckpointTests: XCTestCase {
    func testNamesFollowPyTorchConventions() {
        let m = TinyNet(seed: 1)
        let names = m.stateWriter().entries.map { $0.0 }
        XCTAssertEqual(
            names,
            [
                "conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.weight", "layer1.1.weight",
                "layer1.1.bias", "fc.weight", "fc.bias", "bn1.running_mean", "bn1.running_var",
                "layer1.1.running_mean", "layer1.1.running_var", "bn1.num_batches_tracked",
                "layer1.1.num_batches_tracked"
            ])
        XCTAssertEqual(m.parameterCount, 4 * 3 * 9 + 8 + 16 + 8 + 12 + 3)
    }

    /// Save then load is bit-exact, and the loaded model equals the saved one.
    func testRoundTripIsBitExact() throws {
        let dir = try makeScratchFolder("nn")
        let a = TinyNet(seed: 1), b = TinyNet(seed: 2)
        a.bn1.runningMean.fill(0.25); a.bn1.numBatchesTracked.value = 1234567890123
        let url = dir.appendingPathComponent("tiny.safetensors")
        try a.save(to: url, metadata: ["arch": "tiny", "classes": "[\"a\",\"b\",\"c\"]"])
        let file = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(file.metadata["arch"], "tiny")
        try b.load(file)
        for ((na, ta), (nb, tb)) in zip(a.namedParameters() + a.namedBuffers(), b.namedParameters() + b.namedBuffers())
        {
            XCTAssertEqual(na, nb)
            XCTAssertEqual(ta.scalars.map { $0.bitPattern }, tb.scalars.map { $0.bitPattern }, na)
        }
        XCTAssertEqual(b.bn1.numBatchesTracked.value, 1234567890123)
        // Serialising again gives the same bytes.
        XCTAssertEqual(
            try b.stateWriter(metadata: ["arch": "tiny", "classes": "[\"a\",\"b\",\"c\"]"]).serialized(),
            try Data(contentsOf: url))
        // scripts/fixtures/check_swift_written.sh sets this to load our file with Python's safetensors.
        if let export = ProcessInfo.processInfo.environment["EXPORT_SAFETENSORS"] {
            try a.save(to: URL(fileURLWithPath: export), metadata: ["arch": "tiny"])
        }
        // No temporary files are left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["tiny.safetensors"])
    }

    /// Strict load reports every missing, unexpected and mis-shaped name and changes nothing.
    func testStrictLoadReportsEveryProblem() throws {
        let a = TinyNet(seed: 1, classes: 5)
        var w = a.stateWriter()
        w.entries.removeAll { $0.0 == "bn1.bias" || $0.0 == "layer1.0.weight" }
        w.add("extra.weight", Tensor(zeros: [2]))
        let file = try SafeTensorsFile(data: try w.serialized(), name: "bad.safetensors")
        let b = TinyNet(seed: 2, classes: 3)
        let before = b.conv1.weight.scalars
        XCTAssertThrowsError(try b.load(file)) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.hasPrefix("bad.safetensors: "), msg)
            for s in [
                "bn1.bias", "layer1.0.weight", "extra.weight", "fc.weight: model [3, 4] vs file [5, 4]", "fc.bias"
            ] {
                XCTAssertTrue(msg.contains(s), "\(s) not in: \(msg)")
            }
        }
        XCTAssertEqual(b.conv1.weight.scalars, before, "a refused load must not change the model")
        // Non-strict: loads what matches, reports the rest, but still refuses wrong shapes.
        let c = TinyNet(seed: 3, classes: 5)
        let report = try c.load(file, strict: false)
        XCTAssertEqual(Set(report.missing), ["bn1.bias", "layer1.0.weight"])
        XCTAssertEqual(report.unexpected, ["extra.weight"])
        XCTAssertEqual(c.conv1.weight.scalars, a.conv1.weight.scalars)
        XCTAssertThrowsError(try b.load(file, strict: false))
    }

    /// A file written by Python's safetensors loads with the right names, shapes, dtypes and values.
    func testReadsPythonWrittenFile() throws {
        let f = try fixture("python_written", target: "EngineTests")
        XCTAssertEqual(f.metadata["arch"], "resnet18")
        XCTAssertEqual(f.metadata["classes"], "[\"cat\", \"dog\"]")
        XCTAssertEqual(f.entries["f32"]?.shape, [2, 3])
        XCTAssertEqual(try f.tensor("f32").scalars, [1, -2.5, 3.25, 0, 1e-3, -1e6])
        for (name, ref) in [("f16", "expected.f16"), ("bf16", "expected.bf16"), ("f64", "expected.f64")] {
            let got = try f.tensor(name).scalars, want = try f.tensor(ref).scalars
            XCTAssertEqual(got.map { $0.bitPattern }, want.map { $0.bitPattern }, name)
        }
        XCTAssertEqual(f.entries["i64"]?.shape, [])
        XCTAssertEqual(try f.integers("i64"), [1234567890123])
        XCTAssertEqual(f.entries["f16"]?.dtype, .f16)
    }

    /// Truncated, bit-flipped and garbage files give a thrown error with a message, never a crash.
    func testCorruptFilesAreRefusedCleanly() throws {
        let m = TinyNet(seed: 1)
        let good = try m.stateWriter(metadata: ["arch": "tiny"]).serialized()
        func check(_ d: Data, _ what: String) {
            do {
                let f = try SafeTensorsFile(data: d, name: "x.safetensors")
                // Parsed: every tensor must still be readable or give an error; loading must not crash.
                _ = try? TinyNet(seed: 2).load(f)
                for n in f.names { _ = try? f.tensor(n) }
            } catch let e as CheckpointError {
                XCTAssertTrue(e.description.hasPrefix("x.safetensors: ") && e.message.count > 5, "\(what): \(e)")
            } catch {
                XCTFail("\(what): unexpected error type \(error)")
            }
        }
        check(Data(), "empty")
        check(Data([1, 2, 3]), "3 bytes")
        var rng = SeededRNG(seed: 99)
        for _ in 0..<300 { check(good.prefix(rng.int(below: good.count)), "truncated") }
        for _ in 0..<500 {
            var d = good
            let flips = 1 + rng.int(below: 3)
            for _ in 0..<flips {
                let i = rng.int(below: min(d.count, 8 + 400))  // mostly in the header, where parsing happens
                d[i] ^= UInt8(1 << rng.int(below: 8))
            }
            check(d, "bit-flipped")
        }
        for _ in 0..<100 { check(Data((0..<rng.int(below: 2000)).map { _ in UInt8(rng.int(below: 256)) }), "random") }
        // Specific malformed headers.
        func file(_ header: String, dataBytes: Int) -> Data {
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8)); d.append(Data(count: dataBytes))
            return d
        }
        let cases: [(String, Int, String)] = [
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "needs 12"),
            ("{\"a\":{\"dtype\":\"Q8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "unsupported dtype"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "invalid shape"),
            (
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, "overlap"
            ),
            (
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296, 4294967296, 16],\"data_offsets\":[0,4]}}", 4,
                "large shape"
            ),
            ("[1,2]", 0, "not a JSON object"),
            ("{\"a\":", 0, "not valid JSON")
        ]
        for (h, n, expect) in cases {
            XCTAssertThrowsError(try SafeTensorsFile(data: file(h, dataBytes: n), name: "h.safetensors")) { e in
                XCTAssertTrue("\(e)".contains(expect), "expected '\(expect)' in: \(e)")
            }
        }
        var huge = Data(); var n = UInt64(1) << 40
        withUnsafeBytes(of: &n) { huge.append(contentsOf: $0) }
        XCTAssertThrowsError(try SafeTensorsFile(data: huge, name: "huge")) { e in
            XCTAssertTrue("\(e)".contains("over the limit"))
        }
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors"))) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/x.safetensors"))
        }
    }

    /// A file we write is readable by Python's safetensors (checked when python with safetensors exists;
    /// the suite does not depend on it). The format itself is checked above against a Python-written file.
    func testHeaderIsPaddedAndSorted() throws {
        let d = try TinyNet(seed: 1).stateWriter(metadata: ["k": "v"]).serialized()
        let n = d.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(n % 8, 0)
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + Int(n)))) as! [String: Any]
        XCTAssertEqual((header["__metadata__"] as! [String: String])["k"], "v")
        let fw = header["fc.weight"] as! [String: Any]
        XCTAssertEqual(fw["dtype"] as? String, "F32")
        XCTAssertEqual(fw["shape"] as? [Int], [3, 4])
    }
}
