import XCTest
import TestSupport
import Foundation
import NN
import WeightImport

/// A safetensors fixture with access to each entry's raw bytes (for bit-exact comparisons).
struct ExpectedTensors {
    let file: SafeTensorsFile
    let bytes: Data
    init(_ name: String) throws {
        let url = fixtureURL(name)
        file = try SafeTensorsFile(contentsOf: url)
        bytes = try Data(contentsOf: url)
    }
    var names: [String] { file.names }
    func raw(_ name: String) -> RawTensor {
        let e = file.entries[name]!
        return RawTensor(dtype: e.dtype, shape: e.shape, data: bytes.subdata(in: e.range))
    }
}

extension XCTestCase {
    /// The error message of `body`, failing the test when it does not throw.
    func errorMessage(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do { try body() } catch { return "\(error)" }
        XCTFail("expected an error", file: file, line: line)
        return ""
    }

    func assertSame(_ a: RawTensor, _ b: RawTensor, _ what: String, file: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertEqual(a.dtype, b.dtype, "\(what): dtype", file: file, line: line)
        XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
        XCTAssertTrue(a.data == b.data, "\(what): bytes differ", file: file, line: line)
    }
}
