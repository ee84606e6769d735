import XCTest
import TestSupport
import Foundation
import NN
import WeightImport

/// The restricted pickle reader: what weight files use loads; everything else is refused with a message
/// that names the problem, and nothing runs.
final class PickleTests: XCTestCase {
    func bytes(_ parts: [Any]) -> Data {
        var d = Data()
        for p in parts {
            if let s = p as? String {
                d.append(Data(s.utf8))
            } else if let b = p as? [UInt8] {
                d.append(contentsOf: b)
            } else if let b = p as? [Int] {
                d.append(contentsOf: b.map { UInt8($0) })
            } else if let b = p as? UInt8 {
                d.append(b)
            } else if let b = p as? Data {
                d.append(b)
            } else {
                fatalError("bad part")
            }
        }
        return d
    }
    func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    func unicode(_ s: String) -> Data { bytes([UInt8(0x58), le(UInt64(s.utf8.count), 4), s]) }
    func short(_ s: String) -> Data { bytes([UInt8(0x8C), UInt8(s.utf8.count), s]) }

    func refusal(_ d: Data) -> String {
        errorMessage { _ = try PickleReader.load(d) }
    }

    func testSimpleValues() throws {
        // {"a": [1, -2, 70000, 3.5, True, None, b"xy"], "b": (1, 2)} written with protocol 2 opcodes.
        let d = bytes([
            [0x80, 0x02, 0x7D, 0x71, 0x00, 0x28], unicode("a"), [0x5D, 0x28, 0x4B, 0x01, 0x4A],
            le(UInt64(bitPattern: -2), 4),
            [0x4A], le(70000, 4), [0x47, 0x40, 0x0C, 0, 0, 0, 0, 0, 0], [0x88, 0x4E, 0x43, 0x02], "xy", [0x65],
            short("b"), [0x4B, 0x01, 0x4B, 0x02, 0x86, 0x75, 0x2E]
        ])
        let doc = try PickleReader.load(d)
        let root = try XCTUnwrap(doc.dict(doc.root))
        let a = try XCTUnwrap(root["a"].flatMap(doc.sequence))
        XCTAssertEqual(a.count, 7)
        guard case .int(1) = a[0], case .int(-2) = a[1], case .int(70000) = a[2], case .float(3.5) = a[3],
            case .bool(true) = a[4],
            case .none = a[5], case .bytes(let xy) = a[6]
        else { return XCTFail("values: \(a.map(doc.kind))") }
        XCTAssertEqual(xy, Data("xy".utf8))
        XCTAssertEqual(try XCTUnwrap(root["b"].flatMap(doc.sequence)).count, 2)
    }

    func testNumpyPicklesProtocols2And5() throws {
        let expected = try ExpectedTensors("numpy_expected.safetensors")
        for name in ["numpy_p2.pkl", "numpy_p5.pkl"] {
            let c = try CheckpointImport.contents(of: fixtureURL(name))
            XCTAssertEqual(c.container, .pickle)
            XCTAssertEqual(c.tensors.map(\.name), ["a", "b", "c"], name)
            for (n, t) in c.tensors { assertSame(t, expected.raw(n), "\(name) \(n)") }
        }
    }

    func testDangerousGlobalsAreRefusedAndNothingRuns() throws {
        let marker = "/tmp/pwned-\(UUID().uuidString)"
        // pickle.dumps of os.system("touch <marker>") as Python writes it (protocol 2 and 4 forms).
        let p2 = bytes([[0x80, 0x02], "cos\nsystem\nq\u{0}", unicode("touch \(marker)"), [0x85, 0x52, 0x2E]])
        let p4 = bytes([
            [0x80, 0x04], short("os"), short("system"), [0x93], short("touch \(marker)"), [0x85, 0x52, 0x2E]
        ])
        let builtinsEval = bytes([
            [0x80, 0x04], short("builtins"), short("eval"), [0x93], short("__import__('os').system('touch \(marker)')"),
            [0x85, 0x52, 0x2E]
        ])
        let py2Eval = bytes([[0x80, 0x02], "c__builtin__\neval\n", unicode("1"), [0x85, 0x52, 0x2E]])
        let posix = bytes([[0x80, 0x02], "cposix\nsystem\n", unicode("touch \(marker)"), [0x85, 0x52, 0x2E]])
        let popen = bytes([
            [0x80, 0x02], "csubprocess\nPopen\n", unicode("touch"), unicode(marker), [0x86, 0x85, 0x52, 0x2E]
        ])
        let inst = bytes([[0x80, 0x02, 0x28], unicode("touch \(marker)"), "ios\nsystem\n", [0x2E]])
        for (d, name) in [
            (p2, "os.system"), (p4, "os.system"), (builtinsEval, "builtins.eval"), (py2Eval, "__builtin__.eval"),
            (posix, "posix.system"), (popen, "subprocess.Popen")
        ] {
            let m = refusal(d)
            XCTAssertTrue(m.contains("refusing to load \(name)"), m)
            XCTAssertTrue(m.contains("byte offset"), m)
        }
        XCTAssertTrue(refusal(inst).contains("INST"), refusal(inst))
        // Through the file-level API too, as a .pkl.
        let dir = try makeScratchFolder("weightimport")
        let evil = dir.appendingPathComponent("evil.pkl")
        try p2.write(to: evil)
        let m = errorMessage { _ = try CheckpointImport.open(evil, arch: nil) }
        XCTAssertTrue(m.contains("evil.pkl") && m.contains("os.system"), m)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the pickle ran code")
    }

    func testMalformedStreamsAreRefusedWithOffsets() throws {
        let unknown = refusal(Data([0x80, 0x02, 0xFF]))
        XCTAssertTrue(unknown.contains("0xff") && unknown.contains("byte offset 2"), unknown)
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x4E])).contains("without a STOP"), refusal(Data([0x80, 0x02, 0x4E])))
        XCTAssertTrue(refusal(Data()).contains("empty"), refusal(Data()))
        XCTAssertTrue(refusal(Data([0x80, 0x09, 0x4E, 0x2E])).contains("protocol 9"))
        // A real pickle cut short at every length: always an error, never a crash.
        let full = try Data(contentsOf: fixtureURL("numpy_p2.pkl"))
        for n in stride(from: 0, to: full.count - 1, by: 7) {
            XCTAssertThrowsError(try PickleReader.load(full.prefix(n)), "prefix \(n)")
        }
        let cut = refusal(full.prefix(full.count / 2))
        XCTAssertTrue(cut.contains("truncated") || cut.contains("declares"), cut)
        // Huge declared lengths are checked before any allocation.
        let huge = refusal(bytes([[0x80, 0x04, 0x8E], le(1 << 60, 8), [0x2E]]))
        XCTAssertTrue(huge.contains("declares 1152921504606846976 bytes") && huge.contains("BINBYTES8"), huge)
        XCTAssertTrue(refusal(bytes([[0x80, 0x04, 0x8D], le(UInt64.max, 8)])).contains("declares"))
        XCTAssertTrue(refusal(bytes([[0x80, 0x04, 0x96], le(1 << 40, 8)])).contains("BYTEARRAY8"))
        XCTAssertTrue(refusal(bytes([[0x80, 0x02, 0x54], le(UInt64(UInt32.max), 4)])).contains("negative length"))
        XCTAssertTrue(
            refusal(bytes([[0x80, 0x02, 0x58], le(0xFFFF_FFFF, 4), "ab"])).contains("declares 4294967295 bytes"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E])).contains("memo key"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x52, 0x2E])).contains("underflow"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x4E, 0x4E, 0x52, 0x2E])).contains("REDUCE calls None"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x51, 0x2E])).contains("underflow"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x4E, 0x51, 0x2E])).contains("persistent id in a plain pickle"))
        XCTAssertTrue(refusal(Data([0x80, 0x02, 0x82, 0x01, 0x2E])).contains("extension-registry"))
    }

    func testNonStateDictPicklesAreRefusedClearly() throws {
        let dir = try makeScratchFolder("weightimport")
        // Detectron (Caffe2) detection files wrap their arrays in "blobs": refused with a pointer to Detectron2.
        let blobs = dir.appendingPathComponent("blobs.pkl")
        try bytes([[0x80, 0x02, 0x7D], unicode("blobs"), [0x7D, 0x73, 0x2E]]).write(to: blobs)
        XCTAssertTrue(
            errorMessage { _ = try CheckpointImport.open(blobs, arch: nil) }.contains("Caffe2) detection checkpoint"))
        // A dict without tensors names its keys.
        let empty = dir.appendingPathComponent("empty.pkl")
        try bytes([[0x80, 0x02, 0x7D], unicode("epoch"), [0x4B, 0x05, 0x73, 0x2E]]).write(to: empty)
        XCTAssertTrue(
            errorMessage { _ = try CheckpointImport.open(empty, arch: nil) }.contains(
                "holds no tensors (top-level keys: epoch)"))
    }

    func testDeepNestingAndFloodsAreBounded() throws {
        // 100k nested MARKs: refused at the nesting limit.
        let marks = refusal(Data([0x80, 0x02] + [UInt8](repeating: 0x28, count: 100_000)))
        XCTAssertTrue(marks.contains("nesting deeper than"), marks)
        // A 300k-deep tuple chain (no MARKs): built and freed without recursion; not a state dict.
        var chain = Data([0x80, 0x02, 0x29])
        chain.append(Data(repeating: 0x85, count: 300_000))
        chain.append(0x2E)
        let doc = try PickleReader.load(chain)
        XCTAssertEqual(doc.kind(doc.root), "tuple of 1")
        let dir = try makeScratchFolder("weightimport")
        let deep = dir.appendingPathComponent("deep.pkl")
        try chain.write(to: deep)
        let m = errorMessage { _ = try CheckpointImport.open(deep, arch: nil) }
        XCTAssertTrue(m.contains("expected a dict of tensors"), m)
        // A list containing itself (a cycle) is harmless.
        let cycle = Data([0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E])
        let c = try PickleReader.load(cycle)
        XCTAssertEqual(c.kind(c.root), "list of 1")
        // Two million NONEs: the stack limit.
        var flood = Data([0x80, 0x02])
        flood.append(Data(repeating: 0x4E, count: 1_100_000))
        XCTAssertTrue(refusal(flood).contains("stack grows beyond"))
    }
}
