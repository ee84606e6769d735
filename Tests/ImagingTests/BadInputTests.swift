import Foundation
import Imaging
import XCTest

/// Bad input must become a thrown `ImageError` naming the file, never a crash, exit or grey-filled image.
final class BadInputTests: XCTestCase {
    let encodedFixtures = [
        "gray.png", "gray1.png", "gray_alpha.png", "rgba.png", "palette.png", "gray16.png",
        "rgb16.png", "interlaced.png", "gray.jpg", "rgb.jpg", "rgb444.jpg", "progressive.jpg",
        "cmyk.jpg"
    ]

    func testEveryTruncationPointThrows() throws {
        for name in encodedFixtures {
            let data = try Fixtures.data(name)
            XCTAssertNoThrow(try ImageIO.decode(data: data, name: name), name)
            let magicLength = name.hasSuffix(".png") ? 8 : 3
            for cut in 0..<data.count {
                let expected: ImageError.Kind = cut == 0 ? .empty : cut < magicLength ? .unknownFormat : .truncated
                assertImageError(
                    try ImageIO.decode(data: data.prefix(cut), name: name), kind: expected,
                    mentions: name, "\(name) cut at \(cut) of \(data.count)")
            }
        }
    }

    func testTruncatedFileMessage() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["rgb.jpg", "rgba.png"] {
            let data = try Fixtures.data(name)
            let url = dir.appendingPathComponent("cut-" + name)
            try data.prefix(data.count / 2).write(to: url)
            do {
                _ = try ImageIO.read(url)
                XCTFail("\(name) should not decode")
            } catch let error as ImageError {
                XCTAssertEqual(error.kind, .truncated)
                let format = name.hasSuffix("png") ? "PNG" : "JPEG"
                XCTAssertTrue(error.description.hasPrefix(url.path + ": truncated \(format) data"), error.description)
            }
        }
    }

    func testRandomBytesThrow() throws {
        var rng = SeededRandom(seed: 42)
        let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF],
            pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        for trial in 0..<300 {
            let count = Int.random(in: 1...3000, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            switch trial % 3 {
            case 0: break
            case 1: bytes = jpegMagic + bytes
            default: bytes = pngMagic + bytes
            }
            assertImageError(
                try ImageIO.decode(data: Data(bytes), name: "random\(trial).bin"),
                kind: ImageFormat.detect(Data(bytes)) == nil ? .unknownFormat : nil,
                mentions: "random\(trial).bin", "trial \(trial)")
        }
    }

    /// Flipping bytes of valid files either still decodes (JPEG entropy data is not checksummed) with the right
    /// size, or throws; it never crashes.
    func testCorruptedBytesNeverCrash() throws {
        var rng = SeededRandom(seed: 7)
        for name in encodedFixtures {
            let original = try Fixtures.data(name)
            for trial in 0..<150 {
                var bytes = [UInt8](original)
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                do {
                    let image = try ImageIO.decode(data: Data(bytes), name: name)
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                } catch let error as ImageError {
                    XCTAssertTrue(error.description.hasPrefix(name + ": "), "\(name) trial \(trial): \(error)")
                    XCTAssertFalse(error.message.isEmpty)
                }
            }
        }
    }

    func testFileProblems() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.jpg")
        assertImageError(try ImageIO.read(missing), kind: .fileNotFound, mentions: "missing.jpg")

        let empty = dir.appendingPathComponent("empty.png")
        try Data().write(to: empty)
        assertImageError(try ImageIO.read(empty), kind: .empty, mentions: "empty.png")

        assertImageError(try ImageIO.read(dir), kind: .readFailed, mentions: dir.lastPathComponent)

        let text = dir.appendingPathComponent("boxes.jpg")
        try Data("x1,y1,x2,y2\n1,2,3,4\n".utf8).write(to: text)
        do {
            _ = try ImageIO.read(text)
            XCTFail("text should not decode")
        } catch let error as ImageError {
            XCTAssertEqual(error.description, text.path + ": not a JPEG or PNG file")
        }

        let gif = dir.appendingPathComponent("anim.png")
        try Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8).write(to: gif)
        assertImageError(try ImageIO.read(gif), kind: .unknownFormat, mentions: "anim.png")
        do { _ = try ImageIO.read(gif) } catch {
            XCTAssertTrue("\(error)".hasSuffix("not a JPEG or PNG file (looks like GIF)"), "\(error)")
        }

        assertImageError(
            try ImageIO.read(Fixtures.url("rgb.jpg"), maxPixels: 0), kind: .invalidArgument, mentions: "rgb.jpg")
    }

    func testPixelLimitFromRealFiles() throws {
        for name in ["rgb.jpg", "rgba.png", "progressive.jpg", "interlaced.png"] {
            let image = try ImageIO.read(Fixtures.url(name))
            let exact = image.width * image.height
            XCTAssertNoThrow(try ImageIO.read(Fixtures.url(name), maxPixels: exact))
            do {
                _ = try ImageIO.read(Fixtures.url(name), maxPixels: exact - 1)
                XCTFail("\(name) is over the limit")
            } catch let error as ImageError {
                XCTAssertEqual(error.kind, .tooLarge(width: image.width, height: image.height, limit: exact - 1))
                XCTAssertTrue(
                    error.description.hasSuffix(
                        ": image is \(image.width)x\(image.height) = \(exact) pixels, over the limit of \(exact - 1) "
                        + "pixels"
                    ),
                    error.description)
            }
        }
    }

    /// Headers declaring 60000 x 60000 pixels (3.6 gigapixels, 10.8 GB of RGB) are refused from the header.
    func testHugeDeclaredDimensionsAreRefused() throws {
        let expected = ImageError.Kind.tooLarge(width: 60000, height: 60000, limit: 100_000_000)
        let message = "image is 60000x60000 = 3600 megapixels, over the limit of 100 megapixels"

        let png = craftedPNG(width: 60000, height: 60000)
        let jpeg = craftedJPEG(width: 60000, height: 60000)
        // (name, data, length of the data up to the end of the IHDR chunk / SOF segment)
        for (name, data, headerEnd) in [("huge.png", png, 8 + 25), ("huge.jpg", jpeg, 2 + 69 + 19)] {
            do {
                _ = try ImageIO.decode(data: data, name: name)
                XCTFail("\(name) should be refused")
            } catch let error as ImageError {
                XCTAssertEqual(error.kind, expected, name)
                XCTAssertEqual(error.description, "\(name): \(message)")
            }
            // Cut right after the size, the header still reports the size problem first.
            assertImageError(
                try ImageIO.decode(data: data.prefix(headerEnd), name: name), kind: expected, mentions: name)
            assertImageError(
                try ImageIO.decode(data: data.prefix(headerEnd - 12), name: name), kind: .truncated, mentions: name)
            XCTAssertEqual(try ImageIO.size(of: data).width, 60000)
        }
        // A 10000 x 10000 header passes the 100-megapixel limit and then fails on the missing data.
        assertImageError(
            try ImageIO.decode(data: craftedPNG(width: 10000, height: 10000), name: "big.png"),
            kind: .corrupt, mentions: "big.png")
        assertImageError(
            try ImageIO.decode(data: craftedJPEG(width: 10000, height: 10000), name: "big.jpg"),
            mentions: "big.jpg")
        // A zero-width PNG is corrupt.
        assertImageError(
            try ImageIO.decode(data: craftedPNG(width: 0, height: 10), name: "zero.png"),
            kind: .corrupt, mentions: "zero.png")
    }

    // MARK: Crafted headers

    /// Signature, IHDR (8-bit RGB), a tiny IDAT and IEND, with correct CRCs.
    func craftedPNG(width: UInt32, height: UInt32) -> Data {
        func chunk(_ type: String, _ payload: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + payload
            return bigEndian(UInt32(payload.count)) + body + bigEndian(crc32(body))
        }
        let ihdr = bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0]
        let idat: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]  // zlib of one zero byte
        return Data(
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat)
                + chunk("IEND", []))
    }

    /// SOI, a quantisation table, SOF0 (3 components, 4:2:0), a Huffman table, SOS, a few bytes, EOI.
    func craftedJPEG(width: UInt16, height: UInt16) -> Data {
        var bytes: [UInt8] = [0xFF, 0xD8]
        bytes += [0xFF, 0xDB, 0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)
        bytes += [0xFF, 0xC0, 0x00, 0x11, 0x08] + bigEndian16(height) + bigEndian16(width)
        bytes += [0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00]
        bytes += [0xFF, 0xC4, 0x00, 0x14, 0x00, 0x01] + [UInt8](repeating: 0, count: 15) + [0x00]
        bytes += [0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x3F, 0x00]
        bytes += [0x00, 0x00, 0x00, 0x00, 0xFF, 0xD9]
        return Data(bytes)
    }

    func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
    func bigEndian16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
