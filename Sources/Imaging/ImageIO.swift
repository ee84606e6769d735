import CImageCodecs
import Foundation
import FileSupport

/// Reading and writing JPEG and PNG files as 8-bit RGB.
///
/// * The format of input data is detected from its magic bytes, never from the file name.
/// * Every failure (missing or empty file, unknown format, truncated or corrupt data, an image over the pixel
///   limit, an unwritable destination) is thrown as an `ImageError` whose description names the file and the
///   problem. Decoding never exits, aborts or prints: the C shim (`CImageCodecs`) catches libjpeg / libpng
///   errors with setjmp/longjmp.
/// * The pixel limit is checked against the dimensions declared in the header before anything is allocated.
/// * Conversions to RGB: gray is replicated, alpha is dropped (not composited), palettes are expanded, 16-bit
///   PNG samples keep their high byte, CMYK JPEGs are converted assuming Adobe's inverted convention, gamma and
///   ICC profiles are ignored.
/// * A JPEG's EXIF orientation is applied as PIL's `ImageOps.exif_transpose` does (see `EXIFOrientation`),
///   unless `appliesEXIFOrientation` is false; a malformed EXIF block leaves the pixels as stored.
/// * Writes are atomic (temporary file in the same directory, then rename).
public enum ImageIO {
    /// Default for `maxPixels`: 100 megapixels (300 MB of RGB).
    public static let defaultMaxPixels = 100_000_000

    /// Apply JPEG EXIF orientation when decoding (the commands' `--ignore-exif-orientation` sets it to false;
    /// set it before work starts).
    nonisolated(unsafe) public static var appliesEXIFOrientation = true

    // MARK: Reading

    /// Reads and decodes a JPEG or PNG file.
    ///
    /// - Parameters:
    ///   - url: a file URL.
    ///   - maxPixels: refuse images whose declared width * height exceeds this (must be positive).
    /// - Throws: `ImageError` naming `url.path`.
    public static func read(_ url: URL, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        let name = url.isFileURL ? url.path : url.absoluteString
        guard url.isFileURL else { throw ImageError(.invalidArgument, file: name, "can only read file URLs") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ImageError(.fileNotFound, file: name, "no such file")
        }
        guard !isDirectory.boolValue else {
            throw ImageError(.readFailed, file: name, "is a directory, not an image file")
        }
        if let problem = InputFileKind.problem(url.path) {
            throw ImageError(.readFailed, file: name, problem + ", not an image file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError(.readFailed, file: name, "cannot read the file (\(error.localizedDescription))")
        }
        return try decode(data: data, name: name, maxPixels: maxPixels)
    }

    /// Decodes JPEG or PNG data held in memory.
    ///
    /// - Parameters:
    ///   - data: the complete encoded file.
    ///   - name: how errors refer to the data (usually the file name).
    ///   - maxPixels: refuse images whose declared width * height exceeds this (must be positive).
    public static func decode(data: Data, name: String = "<data>", maxPixels: Int = defaultMaxPixels) throws -> RGBImage
    {
        guard maxPixels > 0 else {
            throw ImageError(.invalidArgument, file: name, "maxPixels must be positive (got \(maxPixels))")
        }
        guard !data.isEmpty else { throw ImageError(.empty, file: name, "empty file (0 bytes)") }
        guard let format = ImageFormat.detect(data) else {
            var message = "not a JPEG or PNG file"
            if let other = ImageFormat.otherFormatName(data) { message += " (looks like \(other))" }
            throw ImageError(.unknownFormat, file: name, message)
        }

        var message = [CChar](repeating: 0, count: Int(CIC_MESSAGE_CAPACITY))
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int64 = 0
        var height: Int64 = 0
        let status: Int32 = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self).baseAddress!
            return message.withUnsafeMutableBufferPointer { m in
                switch format {
                case .jpeg:
                    return cic_decode_jpeg(
                        bytes, raw.count, Int64(maxPixels), &pixels, &width, &height, m.baseAddress, m.count)
                case .png:
                    return cic_decode_png(
                        bytes, raw.count, Int64(maxPixels), &pixels, &width, &height, m.baseAddress, m.count)
                }
            }
        }
        defer { cic_free(pixels) }
        guard status == Int32(CIC_OK.rawValue), let pixels else {
            throw error(
                status: status, message: message, file: name, width: Int(width), height: Int(height), limit: maxPixels)
        }
        let count = Int(width) * Int(height) * 3
        let array = [UInt8](UnsafeBufferPointer(start: pixels, count: count))
        let image = try RGBImage(width: Int(width), height: Int(height), pixels: array)
        if format == .jpeg, appliesEXIFOrientation, let o = EXIFOrientation.value(inJPEG: data), o != 1 {
            return EXIFOrientation.apply(o, to: image)
        }
        return image
    }

    /// The width and height declared in a JPEG or PNG header, without decoding the pixels.
    public static func size(of data: Data, name: String = "<data>") throws -> (width: Int, height: Int) {
        guard !data.isEmpty else { throw ImageError(.empty, file: name, "empty file (0 bytes)") }
        guard ImageFormat.detect(data) != nil else {
            throw ImageError(.unknownFormat, file: name, "not a JPEG or PNG file")
        }
        var width: Int64 = 0
        var height: Int64 = 0
        let status = data.withUnsafeBytes { raw in
            cic_probe_size(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, &width, &height)
        }
        switch status {
        case Int32(CIC_OK.rawValue): return (Int(width), Int(height))
        case Int32(CIC_ERR_TRUNCATED.rawValue): throw ImageError(.truncated, file: name, "truncated header")
        default: throw ImageError(.corrupt, file: name, "no image size in the header")
        }
    }

    // MARK: Encoding

    /// Encodes `image` as an 8-bit RGB PNG. `compressionLevel`: zlib level 0 ... 9.
    public static func encodePNG(_ image: RGBImage, compressionLevel: Int = 6, name: String = "<png>") throws -> Data {
        try encode(image, name: name, setting: ("PNG compression level", compressionLevel, 0...9)) {
            rgb, out, size, message, capacity in
            cic_encode_png(
                rgb, Int32(image.width), Int32(image.height), Int32(compressionLevel), out, size, message, capacity)
        }
    }

    /// Encodes `image` as a baseline JPEG (4:2:0 chroma subsampling). `quality`: 1 ... 100.
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 90, name: String = "<jpeg>") throws -> Data {
        try encode(image, name: name, setting: ("JPEG quality", quality, 1...100)) {
            rgb, out, size, message, capacity in
            cic_encode_jpeg(rgb, Int32(image.width), Int32(image.height), Int32(quality), out, size, message, capacity)
        }
    }

    // MARK: Writing

    /// Writes bytes atomically (FileSupport.AtomicFile), reporting failures as `ImageError(.writeFailed)`.
    static func store(_ data: Data, to url: URL) throws {
        do { try AtomicFile.write(data, to: url) } catch let e as AtomicWriteError {
            throw ImageError(url.isFileURL ? .writeFailed : .invalidArgument, file: e.file, e.message)
        }
    }

    /// Writes `image` as a PNG file, atomically.
    public static func writePNG(_ image: RGBImage, to url: URL, compressionLevel: Int = 6) throws {
        let data = try encodePNG(image, compressionLevel: compressionLevel, name: url.path)
        try store(data, to: url)
    }

    /// Writes `image` as a JPEG file, atomically.
    public static func writeJPEG(_ image: RGBImage, to url: URL, quality: Int = 90) throws {
        let data = try encodeJPEG(image, quality: quality, name: url.path)
        try store(data, to: url)
    }

    /// Writes `image` in the format named by the file extension (.png, .jpg, .jpeg; any case), atomically.
    public static func write(_ image: RGBImage, to url: URL, jpegQuality: Int = 90) throws {
        switch ImageFormat(pathExtension: url.pathExtension) {
        case .png: try writePNG(image, to: url)
        case .jpeg: try writeJPEG(image, to: url, quality: jpegQuality)
        case nil:
            let ext = url.pathExtension.isEmpty ? "no extension" : "extension '.\(url.pathExtension)'"
            throw ImageError(
                .invalidArgument, file: url.path, "cannot choose an image format for \(ext) (use .png, .jpg or .jpeg)")
        }
    }

    // MARK: Helpers

    private static func validateForEncoding(_ image: RGBImage, name: String) throws {
        guard image.width > 0, image.height > 0 else {
            throw ImageError(
                .invalidArgument, file: name, "cannot encode an empty \(image.width)x\(image.height) image")
        }
        guard image.width <= Int(Int32.max), image.height <= Int(Int32.max),
            image.pixels.count == image.width * image.height * 3
        else {
            throw ImageError(
                .invalidArgument, file: name,
                "pixel buffer holds \(image.pixels.count) bytes, a \(image.width)x\(image.height) RGB image needs "
                + "\(image.width * image.height * 3)"
            )
        }
    }

    private typealias Encoder = (
        UnsafePointer<UInt8>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
        UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>, Int
    ) -> Int32

    /// Checks the image and the encoder's one setting (name, value, allowed range), then encodes.
    private static func encode(
        _ image: RGBImage, name: String, setting: (String, Int, ClosedRange<Int>),
        _ encoder: Encoder
    ) throws -> Data {
        try validateForEncoding(image, name: name)
        guard setting.2.contains(setting.1) else {
            throw ImageError(
                .invalidArgument, file: name,
                "\(setting.0) \(setting.1) is outside \(setting.2.lowerBound)...\(setting.2.upperBound)")
        }
        var message = [CChar](repeating: 0, count: Int(CIC_MESSAGE_CAPACITY))
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = image.pixels.withUnsafeBufferPointer { rgb in
            message.withUnsafeMutableBufferPointer { m in
                encoder(rgb.baseAddress!, &output, &size, m.baseAddress!, m.count)
            }
        }
        defer { cic_free(output) }
        guard status == Int32(CIC_OK.rawValue), let output else {
            throw error(status: status, message: message, file: name, width: 0, height: 0, limit: 0)
        }
        return Data(bytes: output, count: size)
    }

    /// Maps a shim status to an `ImageError`.
    private static func error(status: Int32, message: [CChar], file: String, width: Int, height: Int, limit: Int)
        -> ImageError
    {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let detail = text.isEmpty ? "unknown error (status \(status))" : text
        switch UInt32(bitPattern: status) {
        case CIC_ERR_TOO_LARGE.rawValue:
            return ImageError(
                .tooLarge(width: width, height: height, limit: limit), file: file,
                overLimitMessage(width: width, height: height, limit: limit))
        case CIC_ERR_TRUNCATED.rawValue: return ImageError(.truncated, file: file, detail)
        case CIC_ERR_CORRUPT.rawValue: return ImageError(.corrupt, file: file, detail)
        case CIC_ERR_NOT_RECOGNIZED.rawValue: return ImageError(.unknownFormat, file: file, detail)
        case CIC_ERR_UNSUPPORTED.rawValue: return ImageError(.unsupported, file: file, detail)
        case CIC_ERR_OUT_OF_MEMORY.rawValue: return ImageError(.outOfMemory, file: file, detail)
        case CIC_ERR_INVALID_ARGUMENT.rawValue: return ImageError(.invalidArgument, file: file, detail)
        default: return ImageError(.encodeFailed, file: file, detail)
        }
    }

    /// "image is 50000x50000 = 2500 megapixels, over the limit of 100 megapixels" (pixels below 1 megapixel).
    static func overLimitMessage(width: Int, height: Int, limit: Int) -> String {
        let total = width * height
        func mega(_ n: Int) -> String {
            let text = String(format: "%.2f", Double(n) / 1e6)
            let trimmed = text.contains(".") ? String(text.reversed().drop { $0 == "0" }.reversed()) : text
            return trimmed.hasSuffix(".") ? String(trimmed.dropLast()) : trimmed
        }
        if limit >= 1_000_000 && mega(total) != mega(limit) {
            return
                "image is \(width)x\(height) = \(mega(total)) megapixels, over the limit of \(mega(limit)) megapixels"
        }
        return "image is \(width)x\(height) = \(total) pixels, over the limit of \(limit) pixels"
    }
}
