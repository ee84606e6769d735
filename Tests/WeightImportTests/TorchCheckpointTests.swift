import XCTest
import TestSupport
import Foundation
import NN
import WeightImport

/// PyTorch checkpoints: zip and legacy formats, views of shared storages, element types; hostile archives.
final class TorchCheckpointTests: XCTestCase {
    func testViewsAndElementTypesAreBitExact() throws {
        let expected = try ExpectedTensors("views_expected.safetensors")
        for (name, container) in [
            ("views.pth", CheckpointContents.Container.torchZip), ("views_legacy.pth", .torchLegacy)
        ] {
            let c = try CheckpointImport.contents(of: fixtureURL(name))
            XCTAssertEqual(c.container, container, name)
            XCTAssertEqual(Set(c.tensors.map(\.name)), Set(expected.names), name)
            for (n, t) in c.tensors { assertSame(t, expected.raw(n), "\(name) \(n)") }
            let types = Set(c.tensors.map(\.tensor.dtype))
            XCTAssertEqual(types, [.f32, .f16, .bf16, .f64, .i64, .u8, .bool], name)
        }
        // In this project's order and names, as a safetensors view (dtypes kept).
        let file = try CheckpointImport.open(fixtureURL("views.pth"), arch: nil)
        XCTAssertEqual(file.entries["f16"]?.dtype, .f16)
        XCTAssertEqual(try file.tensor("transposed").shape, [6, 4])
        XCTAssertEqual(try file.tensor("sliced").scalars, expected.raw("sliced").floats())
        XCTAssertEqual(try file.integers("i64"), [1, 2, 3, 4, 6, 7, 8, 9])
        XCTAssertEqual(file.metadata["source"], "views.pth")
    }

    func testSafetensorsPassThrough() throws {
        let url = fixtureURL("views_expected.safetensors")
        XCTAssertEqual(try CheckpointImport.format(of: url), .safetensors)
        let file = try CheckpointImport.open(url, arch: nil)
        XCTAssertEqual(file.path, url.path)
        XCTAssertEqual(Set(file.names), Set(try ExpectedTensors("views_expected.safetensors").names))
    }

    func testHostileArchivesAreRefused() throws {
        let dotdot = errorMessage { _ = try CheckpointImport.open(fixtureURL("zip_dotdot.pth"), arch: nil) }
        XCTAssertTrue(dotdot.contains("../evil.txt") && dotdot.contains("outside the archive"), dotdot)
        XCTAssertFalse(
            FileManager.default.fileExists(
                atPath: fixtureURL("").deletingLastPathComponent().appendingPathComponent("evil.txt").path))
        let declared = errorMessage { _ = try CheckpointImport.open(fixtureURL("zip_bomb_declared.pth"), arch: nil) }
        XCTAssertTrue(declared.contains("2147483648") && declared.contains("zip bomb"), declared)
        let stored = errorMessage { _ = try CheckpointImport.open(fixtureURL("zip_bomb_stored.pth"), arch: nil) }
        XCTAssertTrue(stored.contains("declares 2147483648 bytes but the file has only"), stored)
        let stream = errorMessage { _ = try CheckpointImport.open(fixtureURL("zip_bomb_stream.pth"), arch: nil) }
        XCTAssertTrue(stream.contains("inflates to more than its declared 16 bytes"), stream)
        let script = errorMessage { _ = try CheckpointImport.open(fixtureURL("torchscript.pth"), arch: nil) }
        XCTAssertTrue(script.contains("TorchScript"), script)

        // Truncated or damaged files.
        let dir = try makeScratchFolder("weightimport")
        let full = try Data(contentsOf: fixtureURL("tv_resnet18_narrow.pth"))
        let cut = dir.appendingPathComponent("cut.pth")
        try full.prefix(full.count / 2).write(to: cut)
        let m = errorMessage { _ = try CheckpointImport.open(cut, arch: nil) }
        XCTAssertTrue(m.contains("cut.pth") && m.contains("zip"), m)
        let legacy = try Data(contentsOf: fixtureURL("views_legacy.pth"))
        for n in [20, legacy.count / 2, legacy.count - 3] {
            let u = dir.appendingPathComponent("legacy\(n).pth")
            try legacy.prefix(n).write(to: u)
            let e = errorMessage { _ = try CheckpointImport.open(u, arch: nil) }
            XCTAssertTrue(e.contains("truncated") || e.contains("declares"), "\(n): \(e)")
        }
        let text = dir.appendingPathComponent("notes.pth")
        try Data("hello".utf8).write(to: text)
        XCTAssertTrue(
            errorMessage { _ = try CheckpointImport.open(text, arch: nil) }.contains(
                "is not a safetensors file, a PyTorch checkpoint"))
        // A zip entry whose bytes were altered fails its CRC check.
        var damaged = try Data(contentsOf: fixtureURL("views.pth"))
        let r = try XCTUnwrap(damaged.range(of: Data("_rebuild_tensor_v2".utf8)))
        damaged[r.lowerBound + 3] ^= 0x01
        let bad = dir.appendingPathComponent("damaged.pth")
        try damaged.write(to: bad)
        let crc = errorMessage { _ = try CheckpointImport.open(bad, arch: nil) }
        XCTAssertTrue(crc.contains("CRC"), crc)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("evil") }, [])
    }
}
