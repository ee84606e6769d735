import Foundation
import Imaging
import XCTest

final class CodecTests: XCTestCase {
    func testPNGRoundTripIsLossless() throws {
        for (i, size) in [(1, 1), (2, 1), (1, 3), (7, 5), (33, 17), (64, 64), (101, 3)].enumerated() {
            let image = randomImage(width: size.0, height: size.1, seed: UInt64(i + 1))
            for level in [0, 6, 9] {
                let data = try ImageIO.encodePNG(image, compressionLevel: level)
                XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
                let decoded = try ImageIO.decode(data: data, name: "roundtrip.png")
                XCTAssertEqual(decoded, image, "size \(size) level \(level)")
            }
        }
    }

    func testJPEGRoundTripIsClose() throws {
        let image = smoothImage(width: 97, height: 61)
        let high = try ImageIO.decode(data: try ImageIO.encodeJPEG(image, quality: 95))
        XCTAssertEqual(high.width, 97)
        XCTAssertEqual(high.height, 61)
        XCTAssertLessThan(meanAbsoluteDifference(high, image), 1.5)
        let low = try ImageIO.decode(data: try ImageIO.encodeJPEG(image, quality: 30))
        XCTAssertLessThan(meanAbsoluteDifference(low, image), 4)
        XCTAssertGreaterThan(meanAbsoluteDifference(low, image), meanAbsoluteDifference(high, image))
        // Tiny and odd sizes survive too (partial MCUs).
        for size in [(1, 1), (3, 2), (17, 9)] {
            let small = RGBImage(width: size.0, height: size.1, fill: (200, 100, 50))
            let decoded = try ImageIO.decode(data: try ImageIO.encodeJPEG(small, quality: 100))
            XCTAssertEqual(decoded.width, size.0)
            XCTAssertEqual(decoded.height, size.1)
            XCTAssertLessThanOrEqual(maxAbsoluteDifference(decoded, small), 3, "\(size)")
        }
    }

    /// Every fixture decodes to exactly the pixels Pillow produced (see scripts/fixtures/imaging_fixtures.py).
    /// For the JPEGs this compares libjpeg-turbo 2.1 (system) with the libjpeg-turbo 3.x bundled in Pillow:
    /// both use the accurate integer IDCT and "fancy" upsampling by default, which are bit-exact across
    /// versions and SIMD paths, so equality is expected (and observed) for baseline and progressive files.
    func testFixturesMatchPillow() throws {
        let names = [
            "gray.png", "gray1.png", "gray_alpha.png", "rgba.png", "palette.png", "gray16.png", "rgb16.png",
            "interlaced.png", "gray.jpg", "rgb.jpg", "rgb444.jpg", "progressive.jpg", "cmyk.jpg"
        ]
        for name in names {
            let decoded = try ImageIO.read(Fixtures.url(name))
            let expected = try Fixtures.rgb8(name + ".rgb8")
            XCTAssertEqual(decoded.width, expected.width, name)
            XCTAssertEqual(decoded.height, expected.height, name)
            XCTAssertEqual(maxAbsoluteDifference(decoded, expected), 0, name)
        }
    }

    func testFixtureDetails() throws {
        // Gray images are replicated into equal channels.
        let gray = try ImageIO.read(Fixtures.url("gray.png"))
        for i in stride(from: 0, to: gray.pixels.count, by: 3) {
            XCTAssertEqual(gray.pixels[i], gray.pixels[i + 1])
            XCTAssertEqual(gray.pixels[i], gray.pixels[i + 2])
        }
        // 16-bit samples keep the high byte: the script put 0, 255, 256, 65535 in the first row.
        let g16 = try ImageIO.read(Fixtures.url("gray16.png"))
        XCTAssertTrue(g16[0, 0] == (0, 0, 0))
        XCTAssertTrue(g16[1, 0] == (0, 0, 0))
        XCTAssertTrue(g16[2, 0] == (1, 1, 1))
        XCTAssertTrue(g16[3, 0] == (255, 255, 255))
        // 1-bit gray expands to 0 / 255.
        let g1 = try ImageIO.read(Fixtures.url("gray1.png"))
        XCTAssertTrue(g1.pixels.allSatisfy { $0 == 0 || $0 == 255 })
        // Adam7 with ragged passes (35 x 27) and palette + tRNS decode to the full picture.
        let interlaced = try ImageIO.read(Fixtures.url("interlaced.png"))
        XCTAssertEqual([interlaced.width, interlaced.height], [35, 27])
        let palette = try ImageIO.read(Fixtures.url("palette.png"))
        XCTAssertLessThanOrEqual(
            Set(stride(from: 0, to: palette.pixels.count, by: 3).map { Array(palette.pixels[$0..<$0 + 3]) }).count, 16)
    }

    func testFormatDetectionUsesMagicBytesNotExtension() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = smoothImage(width: 20, height: 10)
        let misnamed = dir.appendingPathComponent("actually-a-png.jpg")
        try ImageIO.encodePNG(image).write(to: misnamed)
        XCTAssertEqual(try ImageIO.read(misnamed), image)
        XCTAssertEqual(ImageFormat.detect(try ImageIO.encodeJPEG(image)), .jpeg)
        XCTAssertEqual(ImageFormat.detect(try ImageIO.encodePNG(image)), .png)
        XCTAssertNil(ImageFormat.detect(Data("GIF89a".utf8)))
        XCTAssertEqual(try ImageIO.size(of: try Fixtures.data("rgb.jpg")).width, 37)
        XCTAssertEqual(try ImageIO.size(of: try Fixtures.data("interlaced.png")).height, 27)
    }

    func testWriteChoosesFormatByExtensionAndIsAtomic() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = smoothImage(width: 40, height: 30)
        for name in ["a.png", "b.PNG", "c.jpg", "d.JPEG"] {
            let url = dir.appendingPathComponent(name)
            try ImageIO.write(image, to: url)
            let data = try Data(contentsOf: url)
            let expected: ImageFormat = name.lowercased().hasSuffix("png") ? .png : .jpeg
            XCTAssertEqual(ImageFormat.detect(data), expected, name)
            let back = try ImageIO.read(url)
            if expected == .png {
                XCTAssertEqual(back, image)
            } else {
                XCTAssertLessThan(meanAbsoluteDifference(back, image), 2)
            }
        }
        // Overwriting replaces the file; no temporary files are left behind.
        let target = dir.appendingPathComponent("a.png")
        let other = randomImage(width: 5, height: 5, seed: 9)
        try ImageIO.writePNG(other, to: target)
        XCTAssertEqual(try ImageIO.read(target), other)
        try ImageIO.writeJPEG(image, to: dir.appendingPathComponent("q.jpg"), quality: 50)
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(listing, ["a.png", "b.PNG", "c.jpg", "d.JPEG", "q.jpg"])
    }

    func testWriteErrors() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = smoothImage(width: 4, height: 4)
        assertImageError(
            try ImageIO.write(image, to: dir.appendingPathComponent("x.bmp")), kind: .invalidArgument, mentions: "x.bmp"
        )
        assertImageError(
            try ImageIO.write(image, to: dir.appendingPathComponent("noext")), kind: .invalidArgument, mentions: "noext"
        )
        assertImageError(
            try ImageIO.writePNG(image, to: dir.appendingPathComponent("missing/dir/y.png")),
            kind: .writeFailed, mentions: "y.png")
        assertImageError(
            try ImageIO.writeJPEG(image, to: dir.appendingPathComponent("z.jpg"), quality: 0),
            kind: .invalidArgument, mentions: "z.jpg")
        assertImageError(
            try ImageIO.writeJPEG(image, to: dir.appendingPathComponent("z.jpg"), quality: 101),
            kind: .invalidArgument, mentions: "z.jpg")
        assertImageError(
            try ImageIO.writePNG(RGBImage(width: 0, height: 3), to: dir.appendingPathComponent("e.png")),
            kind: .invalidArgument, mentions: "e.png")
        var broken = image
        broken.pixels.removeLast()
        assertImageError(
            try ImageIO.writePNG(broken, to: dir.appendingPathComponent("b.png")), kind: .invalidArgument,
            mentions: "b.png")
        assertImageError(try ImageIO.encodePNG(image, compressionLevel: 10), kind: .invalidArgument, mentions: "<png>")
        // Nothing was created by the failed writes.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
