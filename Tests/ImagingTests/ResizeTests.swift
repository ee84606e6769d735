import Foundation
import Imaging
import XCTest

final class ResizeTests: XCTestCase {
    /// resizeBilinearPlanar against torch.nn.functional.interpolate(bilinear, align_corners=False,
    /// antialias=False) on float32 fixtures.
    func testPlanarResizeMatchesTorch() throws {
        for name in ["up", "down", "mixed", "same", "tiny", "from1x1", "tall", "uint8"] {
            let input = try Fixtures.f32("resize_\(name)_in.f32")
            let output = try Fixtures.f32("resize_\(name)_out.f32")
            let (c, h, w) = (input.shape[0], input.shape[1], input.shape[2])
            let (oh, ow) = (output.shape[1], output.shape[2])
            XCTAssertEqual(output.shape[0], c)
            var result = [Float](repeating: .nan, count: c * oh * ow)
            input.values.withUnsafeBufferPointer { src in
                result.withUnsafeMutableBufferPointer { dst in
                    resizeBilinearPlanar(
                        src: src.baseAddress!, channels: c, srcH: h, srcW: w,
                        dst: dst.baseAddress!, dstH: oh, dstW: ow)
                }
            }
            let worst = zip(result, output.values).map { abs($0 - $1) }.max() ?? .nan
            let scale = output.values.map(abs).max() ?? 1
            XCTAssertLessThanOrEqual(worst, 1e-5 * max(1, scale), "\(name): max abs diff \(worst)")
        }
    }

    /// The UInt8 resize equals torch's float result rounded to the nearest integer.
    func testRGBResizeRoundsTorchResult() throws {
        let input = try Fixtures.f32("resize_uint8_in.f32")  // (3, 13, 17), values 0...255
        let output = try Fixtures.f32("resize_uint8_out.f32")  // (3, 23, 31)
        let (h, w) = (input.shape[1], input.shape[2])
        let (oh, ow) = (output.shape[1], output.shape[2])
        var image = RGBImage(width: w, height: h)
        for c in 0..<3 {
            for y in 0..<h {
                for x in 0..<w { image.pixels[3 * (y * w + x) + c] = UInt8(input.values[(c * h + y) * w + x]) }
            }
        }
        let resized = try image.resizedBilinear(width: ow, height: oh)
        XCTAssertEqual(resized.width, ow)
        XCTAssertEqual(resized.height, oh)
        for c in 0..<3 {
            for y in 0..<oh {
                for x in 0..<ow {
                    let reference = output.values[(c * oh + y) * ow + x]
                    let got = Float(resized.pixels[3 * (y * ow + x) + c])
                    XCTAssertLessThanOrEqual(abs(got - reference), 0.5 + 1e-3, "(\(x), \(y), \(c))")
                }
            }
        }
    }

    func testResizeSpecialCases() throws {
        let image = randomImage(width: 9, height: 7, seed: 3)
        XCTAssertEqual(try image.resizedBilinear(width: 9, height: 7), image)  // same size is the identity
        // Exact 2x downsampling with align_corners=False averages 2x2 blocks.
        var checker = RGBImage(width: 4, height: 2)
        checker[0, 0] = (0, 0, 0); checker[1, 0] = (100, 0, 0); checker[0, 1] = (0, 100, 0);
        checker[1, 1] = (100, 100, 200)
        let half = try checker.resizedBilinear(width: 2, height: 1)
        XCTAssertTrue(half[0, 0] == (50, 50, 50), "\(half[0, 0])")
        let single = RGBImage(width: 1, height: 1, fill: (10, 20, 30))
        let grown = try single.resizedBilinear(width: 5, height: 3)
        XCTAssertEqual(grown.count(of: (10, 20, 30)), 15)
        assertImageError(try image.resizedBilinear(width: 0, height: 5), kind: .invalidArgument, mentions: "resize")
        assertImageError(try image.resizedBilinear(width: 5, height: -1), kind: .invalidArgument, mentions: "resize")
        assertImageError(
            try RGBImage(width: 0, height: 0).resizedBilinear(width: 5, height: 5), kind: .invalidArgument,
            mentions: "resize")
    }

    func testCropFlipPadPaste() throws {
        let image = randomImage(width: 6, height: 4, seed: 11)
        let crop = try image.cropped(x: 2, y: 1, width: 3, height: 2)
        XCTAssertEqual(crop.width, 3)
        XCTAssertEqual(crop.height, 2)
        for y in 0..<2 { for x in 0..<3 { XCTAssertTrue(crop[x, y] == image[x + 2, y + 1]) } }
        XCTAssertEqual(try image.cropped(x: 0, y: 0, width: 6, height: 4), image)
        XCTAssertEqual(try image.cropped(x: 6, y: 4, width: 0, height: 0).pixels, [])
        assertImageError(try image.cropped(x: 4, y: 0, width: 3, height: 1), kind: .invalidArgument, mentions: "crop")
        assertImageError(try image.cropped(x: -1, y: 0, width: 1, height: 1), kind: .invalidArgument, mentions: "crop")
        assertImageError(
            try image.cropped(x: 0, y: 0, width: Int.max, height: 1), kind: .invalidArgument, mentions: "crop")

        let flipped = image.flippedHorizontally()
        for y in 0..<4 { for x in 0..<6 { XCTAssertTrue(flipped[x, y] == image[5 - x, y]) } }
        XCTAssertEqual(flipped.flippedHorizontally(), image)
        let odd = randomImage(width: 5, height: 1, seed: 2)
        XCTAssertTrue(odd.flippedHorizontally()[2, 0] == odd[2, 0])
        let upsideDown = image.flippedVertically()
        for y in 0..<4 { for x in 0..<6 { XCTAssertTrue(upsideDown[x, y] == image[x, 3 - y]) } }

        let padded = try image.padded(top: 1, left: 2, bottom: 3, right: 4, fill: (9, 8, 7))
        XCTAssertEqual(padded.width, 12)
        XCTAssertEqual(padded.height, 8)
        XCTAssertTrue(padded[0, 0] == (9, 8, 7))
        XCTAssertTrue(padded[11, 7] == (9, 8, 7))
        XCTAssertTrue(padded[2, 1] == image[0, 0])
        XCTAssertTrue(padded[7, 4] == image[5, 3])
        XCTAssertEqual(padded.count(of: (9, 8, 7)), 12 * 8 - 24)
        assertImageError(try image.padded(top: -1), kind: .invalidArgument, mentions: "pad")

        var canvas = RGBImage(width: 4, height: 4)
        canvas.paste(image, x: -3, y: 2)  // clipped on the left and bottom
        XCTAssertTrue(canvas[0, 2] == image[3, 0])
        XCTAssertTrue(canvas[2, 3] == image[5, 1])
        XCTAssertTrue(canvas[3, 3] == (0, 0, 0))
        canvas.paste(image, x: Int.max - 2, y: Int.min + 1)  // nothing visible, no overflow
    }

    func testPlanarFloatConversion() throws {
        let image = randomImage(width: 5, height: 3, seed: 5)
        let mean: (Float, Float, Float) = (0.485, 0.456, 0.406), std: (Float, Float, Float) = (0.229, 0.224, 0.225)
        let planes = image.planarFloats(mean: mean, std: std)
        XCTAssertEqual(planes.count, 45)
        let (r, g, b) = image[4, 2]
        XCTAssertEqual(planes[0 * 15 + 2 * 5 + 4], (Float(r) / 255 - 0.485) / 0.229, accuracy: 1e-5)
        XCTAssertEqual(planes[1 * 15 + 2 * 5 + 4], (Float(g) / 255 - 0.456) / 0.224, accuracy: 1e-5)
        XCTAssertEqual(planes[2 * 15 + 2 * 5 + 4], (Float(b) / 255 - 0.406) / 0.225, accuracy: 1e-5)
        let back = planes.withUnsafeBufferPointer {
            RGBImage(planarFloats: $0.baseAddress!, width: 5, height: 3, mean: mean, std: std)
        }
        XCTAssertEqual(back, image)
    }

    func testImageBasics() throws {
        var image = RGBImage(width: 3, height: 2, fill: (1, 2, 3))
        XCTAssertEqual(image.pixels.count, 18)
        XCTAssertEqual(image.count(of: (1, 2, 3)), 6)
        image[2, 1] = (7, 8, 9)
        XCTAssertEqual(Array(image.pixels[15..<18]), [7, 8, 9])
        XCTAssertTrue(image.pixel(x: 2, y: 1)! == (7, 8, 9))
        XCTAssertNil(image.pixel(x: 3, y: 0))
        image.setPixel(x: -1, y: 0, to: (0, 0, 0))  // ignored
        XCTAssertEqual(image.count(of: (1, 2, 3)), 5)
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]))
        XCTAssertThrowsError(try RGBImage(width: -1, height: 2, pixels: []))
    }
}
