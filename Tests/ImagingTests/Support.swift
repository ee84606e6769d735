import Foundation
import Imaging
import XCTest
import TestSupport

/// Fixture files made by scripts/fixtures/imaging_fixtures.py (formats documented there).
enum Fixtures {
    static func url(_ name: String) -> URL { fixtureURL(name) }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    /// Reads a `.rgb8` file: "RGB8", width, height (uint32 LE), then RGB bytes.
    static func rgb8(_ name: String) throws -> RGBImage {
        let bytes = [UInt8](try data(name))
        guard bytes.count >= 12, Array(bytes[0..<4]) == Array("RGB8".utf8) else {
            throw FixtureError("\(name): not an RGB8 fixture")
        }
        let w = Int(uint32(bytes, 4)), h = Int(uint32(bytes, 8))
        return try RGBImage(width: w, height: h, pixels: Array(bytes[12...]))
    }

    /// Reads a `.f32` file: "F32T", ndim, sizes (uint32 LE), then float32 LE values.
    static func f32(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](try data(name))
        guard bytes.count >= 8, Array(bytes[0..<4]) == Array("F32T".utf8) else {
            throw FixtureError("\(name): not an F32T fixture")
        }
        let ndim = Int(uint32(bytes, 4))
        let shape = (0..<ndim).map { Int(uint32(bytes, 8 + 4 * $0)) }
        let start = 8 + 4 * ndim
        let count = shape.reduce(1, *)
        guard bytes.count == start + 4 * count else { throw FixtureError("\(name): wrong size") }
        let values = (0..<count).map { Float(bitPattern: uint32(bytes, start + 4 * $0)) }
        return (shape, values)
    }

    private static func uint32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// SplitMix64: a tiny seeded generator so tests are reproducible without depending on other modules.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
    var rng = SeededRandom(seed: seed)
    let pixels = (0..<width * height * 3).map { _ in UInt8.random(in: 0...255, using: &rng) }
    return try! RGBImage(width: width, height: height, pixels: pixels)
}

/// A smooth picture (gradients and a soft blob) that JPEG compresses well.
func smoothImage(width: Int, height: Int) -> RGBImage {
    var image = RGBImage(width: width, height: height)
    for y in 0..<height {
        for x in 0..<width {
            let fx = Double(x) / Double(max(width - 1, 1)), fy = Double(y) / Double(max(height - 1, 1))
            let blob = exp(-((fx - 0.5) * (fx - 0.5) + (fy - 0.4) * (fy - 0.4)) * 8)
            image[x, y] = (UInt8(200 * fx + 30), UInt8(180 * fy + 40), UInt8(220 * blob + 20))
        }
    }
    return image
}

func meanAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) -> Double {
    precondition(a.pixels.count == b.pixels.count)
    var total = 0
    for i in a.pixels.indices { total += abs(Int(a.pixels[i]) - Int(b.pixels[i])) }
    return Double(total) / Double(max(a.pixels.count, 1))
}

func maxAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
    precondition(a.pixels.count == b.pixels.count)
    var worst = 0
    for i in a.pixels.indices { worst = max(worst, abs(Int(a.pixels[i]) - Int(b.pixels[i]))) }
    return worst
}

/// A fresh empty directory for a test, removed by the caller's tearDown or left in the system temp folder.
func makeTemporaryDirectory() throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("ImagingTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Asserts that `body` throws an `ImageError` of the expected kind whose description names `file`.
func assertImageError<T>(
    _ body: @autoclosure () throws -> T, kind: ImageError.Kind? = nil, mentions file: String,
    _ context: String = "", line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected an ImageError \(context)", line: line)
    } catch let error as ImageError {
        if let kind { XCTAssertEqual(error.kind, kind, "\(context): \(error)", line: line) }
        XCTAssertFalse(error.message.isEmpty, context, line: line)
        XCTAssertTrue(error.description.contains(file), "\(context): '\(error)' should name \(file)", line: line)
    } catch {
        XCTFail("expected an ImageError, got \(error) \(context)", line: line)
    }
}
