import Foundation
import Imaging
import XCTest

/// EXIF orientation applied as PIL's ImageOps.exif_transpose does (scripts/fixtures/exif_fixtures.py).
final class EXIFTests: XCTestCase {
    func testOrientationsOneToEightMatchPillowsExifTranspose() throws {
        let names = (1...8).map { "exif_orientation_\($0).jpg" } + ["exif_big_endian.jpg", "exif_garbage.jpg"]
        for name in names {
            let decoded = try ImageIO.read(Fixtures.url(name))
            let expected = try Fixtures.rgb8(name + ".rgb8")
            XCTAssertEqual([decoded.width, decoded.height], [expected.width, expected.height], name)
            XCTAssertEqual(maxAbsoluteDifference(decoded, expected), 0, name)
        }
        XCTAssertEqual(EXIFOrientation.value(inJPEG: try Data(contentsOf: Fixtures.url("exif_orientation_6.jpg"))), 6)
        XCTAssertEqual(EXIFOrientation.value(inJPEG: try Data(contentsOf: Fixtures.url("exif_big_endian.jpg"))), 6)
        XCTAssertNil(EXIFOrientation.value(inJPEG: try Data(contentsOf: Fixtures.url("exif_garbage.jpg"))))
        XCTAssertNil(EXIFOrientation.value(inJPEG: try Data(contentsOf: Fixtures.url("rgb.jpg"))), "no EXIF")
    }

    /// All eight files store the same pixels (one picture, eight tags): with the switch off every one decodes
    /// to orientation 1's pixels; with it on, orientations 5-8 come out 32x48.
    func testTheSwitchKeepsTheStoredPixels() throws {
        let stored1 = try ImageIO.read(Fixtures.url("exif_orientation_1.jpg"))
        for v in 2...8 {
            let raw = try Data(contentsOf: Fixtures.url("exif_orientation_\(v).jpg"))
            let shown = try ImageIO.decode(data: raw)
            XCTAssertEqual([shown.width, shown.height], v >= 5 ? [32, 48] : [48, 32], "orientation \(v)")
            XCTAssertNotEqual(shown.pixels, stored1.pixels, "orientation \(v) changes the picture")
            ImageIO.appliesEXIFOrientation = false
            defer { ImageIO.appliesEXIFOrientation = true }
            XCTAssertEqual(try ImageIO.decode(data: raw), stored1, "orientation \(v), stored order")
        }
    }

    func meanAbsoluteDifference(_ a: RGBImage, _ b: RGBImage) -> Double {
        zip(a.pixels, b.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(max(a.pixels.count, 1))
    }
}
