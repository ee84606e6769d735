import Foundation

/// The encoded formats this module reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg
    case png

    /// The format announced by the first bytes of `data` (JPEG: FF D8 FF, PNG: the 8-byte PNG signature),
    /// or nil. File extensions are never consulted when reading.
    public static func detect(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(8))
        if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF { return .jpeg }
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return nil
    }

    /// The output format for a file name extension: "png" -> .png, "jpg" / "jpeg" -> .jpeg (any case).
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }

    /// A short guess at what other common formats are, for error messages ("GIF", "WebP", ...).
    static func otherFormatName(_ data: Data) -> String? {
        let head = [UInt8](data.prefix(12))
        func starts(_ bytes: [UInt8]) -> Bool { head.count >= bytes.count && Array(head.prefix(bytes.count)) == bytes }
        if starts(Array("GIF8".utf8)) { return "GIF" }
        if starts(Array("BM".utf8)) { return "BMP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts(Array("RIFF".utf8)) && head.count >= 12 && Array(head[8..<12]) == Array("WEBP".utf8) { return "WebP" }
        if head.count >= 12 && Array(head[4..<8]) == Array("ftyp".utf8) { return "HEIF/AVIF/MP4" }
        if starts([0xFF, 0xD8]) { return "JPEG-like data without a valid marker" }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return "PNG-like data with a damaged signature" }
        return nil
    }
}
