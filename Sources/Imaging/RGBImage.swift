/// An 8-bit colour: red, green, blue. A plain tuple, so literals like `(255, 0, 0)` work everywhere a colour is
/// expected (compare with `==`; tuples cannot conform to `Equatable`).
public typealias RGBColor = (r: UInt8, g: UInt8, b: UInt8)

/// An 8-bit RGB image in memory.
///
/// Pixels are interleaved and row-major with no padding: the pixel at column `x`, row `y` occupies
/// `pixels[3 * (y * width + x) ..< 3 * (y * width + x) + 3]` as red, green, blue. Row 0 is the top row.
/// Images are values (copy-on-write through the array).
public struct RGBImage: Equatable, Sendable {
    /// Number of columns (>= 0).
    public var width: Int
    /// Number of rows (>= 0).
    public var height: Int
    /// `width * height * 3` bytes, RGB interleaved, row-major.
    public var pixels: [UInt8]

    /// An image filled with one colour (black by default). `width` and `height` must not be negative.
    public init(width: Int, height: Int, fill: RGBColor = (0, 0, 0)) {
        precondition(width >= 0 && height >= 0, "RGBImage size must not be negative (got \(width)x\(height))")
        self.width = width
        self.height = height
        let count = width * height
        if fill.r == fill.g && fill.g == fill.b {
            pixels = [UInt8](repeating: fill.r, count: count * 3)
        } else {
            pixels = [UInt8](unsafeUninitializedCapacity: count * 3) { buffer, initialized in
                for i in 0..<count {
                    buffer[3 * i] = fill.r
                    buffer[3 * i + 1] = fill.g
                    buffer[3 * i + 2] = fill.b
                }
                initialized = count * 3
            }
        }
    }

    /// Wraps existing RGB bytes. Throws `ImageError` (kind `.invalidArgument`) when the sizes are negative or
    /// `pixels.count != width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0 else {
            throw ImageError(.invalidArgument, file: "RGBImage", "negative size \(width)x\(height)")
        }
        let (count, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, count <= Int.max / 3, pixels.count == count * 3 else {
            throw ImageError(
                .invalidArgument, file: "RGBImage",
                "\(pixels.count) bytes do not hold a \(width)x\(height) RGB image (needs width*height*3)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// True when (x, y) lies inside the image.
    @inlinable
    public func contains(x: Int, y: Int) -> Bool {
        x >= 0 && y >= 0 && x < width && y < height
    }

    /// The colour at column `x`, row `y`. Like array indexing, an out-of-bounds coordinate is a programming
    /// error and traps; use `pixel(x:y:)` when the coordinate may be outside.
    @inlinable
    public subscript(x: Int, y: Int) -> RGBColor {
        get {
            precondition(contains(x: x, y: y), "pixel (\(x), \(y)) outside a \(width)x\(height) image")
            let i = 3 * (y * width + x)
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            precondition(contains(x: x, y: y), "pixel (\(x), \(y)) outside a \(width)x\(height) image")
            let i = 3 * (y * width + x)
            pixels[i] = newValue.r
            pixels[i + 1] = newValue.g
            pixels[i + 2] = newValue.b
        }
    }

    /// The colour at (x, y), or nil outside the image.
    @inlinable
    public func pixel(x: Int, y: Int) -> RGBColor? {
        contains(x: x, y: y) ? self[x, y] : nil
    }

    /// Sets the pixel at (x, y) when it lies inside the image; does nothing otherwise.
    @inlinable
    public mutating func setPixel(x: Int, y: Int, to color: RGBColor) {
        if contains(x: x, y: y) { self[x, y] = color }
    }

    /// Number of pixels whose colour equals `color`.
    public func count(of color: RGBColor) -> Int {
        pixels.withUnsafeBufferPointer { p in
            var n = 0
            var i = 0
            while i + 2 < p.count {
                if p[i] == color.r && p[i + 1] == color.g && p[i + 2] == color.b { n += 1 }
                i += 3
            }
            return n
        }
    }
}
