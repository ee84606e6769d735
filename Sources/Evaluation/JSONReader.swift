import Foundation

/// A small pull parser over the bytes of one JSON document.
///
/// Why not `JSONSerialization` or `Codable`: results files hold hundreds of thousands of detections, and
/// building an `NSDictionary` per detection costs more than the whole evaluation; and their errors do not
/// say where the problem is. This reader walks the bytes once, lets the caller take the keys it knows and
/// skip the rest (COCO's segmentation polygons), and reports every problem with line, column and byte
/// offset. Numbers are converted with `strtod` (correctly rounded, like Python's `float`), so values are
/// bit-identical to what pycocotools sees. Python's `NaN`, `Infinity` and `-Infinity` are read as numbers so
/// that the caller can say "score is NaN" instead of "unexpected character".
struct JSONReader {
    enum Kind { case object, array, string, number, bool, null }

    let bytes: UnsafeBufferPointer<UInt8>
    let file: String
    var pos = 0
    private var depth = 0
    private static let maxDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>, file: String) {
        self.bytes = bytes
        self.file = file
    }

    /// Runs `body` with a reader over `data`; the reader must not escape `body`.
    static func withReader<T>(_ data: Data, file: String, _ body: (inout JSONReader) throws -> T) throws -> T {
        try data.withUnsafeBytes { raw in
            var reader = JSONReader(bytes: raw.bindMemory(to: UInt8.self), file: file)
            return try body(&reader)
        }
    }

    // MARK: Errors

    /// An `InputError` at `offset` (default: the current position), with line and column worked out.
    func error(_ message: String, at offset: Int? = nil) -> InputError {
        let at = min(max(offset ?? pos, 0), bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<at where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return InputError(file: file, line: line, column: at - lineStart + 1, offset: at, message: message)
    }

    /// How the byte at the current position reads in an error message.
    private var found: String {
        guard pos < bytes.count else { return "end of file" }
        let c = bytes[pos]
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return String(format: "byte 0x%02X", c)
    }

    // MARK: Structure

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    /// The kind of the next value (after whitespace), without consuming it.
    mutating func peekKind() throws -> Kind {
        skipWhitespace()
        guard pos < bytes.count else { throw error("unexpected end of file, expected a value") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "N"), UInt8(ascii: "I"):
            return .number
        default: throw error("expected a value, found \(found)")
        }
    }

    /// True when only whitespace is left.
    mutating func atEnd() -> Bool {
        skipWhitespace()
        return pos >= bytes.count
    }

    mutating func expectEnd() throws {
        if !atEnd() { throw error("unexpected \(found) after the end of the JSON document") }
    }

    /// Consumes `byte`; `what` (built only on error) names it in the message.
    private mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws {
        skipWhitespace()
        guard pos < bytes.count, bytes[pos] == byte else { throw error("expected \(what()), found \(found)") }
        pos += 1
    }

    private mutating func enter() throws {
        depth += 1
        if depth > JSONReader.maxDepth { throw error("nesting deeper than \(JSONReader.maxDepth) levels") }
    }

    /// Reads an array, calling `element(&reader, index)` once per element; the callback must consume exactly
    /// one value.
    mutating func readArray(_ element: (inout JSONReader, Int) throws -> Void) throws {
        try expect(UInt8(ascii: "["), "'['")
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return }
        var index = 0
        while true {
            try element(&self, index)
            index += 1
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of file inside an array, expected ',' or ']'") }
            switch bytes[pos] {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return
            default: throw error("expected ',' or ']' after an array element, found \(found)")
            }
        }
    }

    /// Reads an object, calling `member(&reader, key)` once per member with the reader placed on its value;
    /// the callback must consume exactly one value (`skipValue()` for keys it does not use).
    mutating func readObject(_ member: (inout JSONReader, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"), "'{'")
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw error("expected a string key in an object, found \(found)")
            }
            let key = try readString()
            try expect(UInt8(ascii: ":"), "':' after the key \"\(key)\"")
            try member(&self, key)
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of file inside an object, expected ',' or '}'") }
            switch bytes[pos] {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return
            default: throw error("expected ',' or '}' after an object member, found \(found)")
            }
        }
    }

    // MARK: Scalars

    mutating func readString() throws -> String {
        try expect(UInt8(ascii: "\""), "a string")
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character inside a string (strings must be on one line)") }
            pos += 1
        }
        var buffer = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: buffer, as: UTF8.self)
            }
            if c < 0x20 { throw error("control character inside a string (strings must be on one line)") }
            if c != UInt8(ascii: "\\") { buffer.append(c); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(e)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try readHex4()
                if (0xD800..<0xDC00).contains(scalar), pos + 1 < bytes.count,
                    bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                {
                    pos += 2
                    let low = try readHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                buffer.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))' in a string", at: pos - 2)
            }
        }
        throw error("unexpected end of file inside a string that starts here", at: start - 1)
    }

    private mutating func readHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("incomplete \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in a \\u escape")
            }
            value = value * 16 + digit
            pos += 1
        }
        return value
    }

    /// Reads a number. Also accepts Python's `NaN`, `Infinity`, `-Infinity` so callers can reject them by name.
    mutating func readNumber() throws -> Double { try scanNumber(convert: true) }

    /// Checks the JSON number grammar at the current position; converts only when asked.
    private mutating func scanNumber(convert: Bool) throws -> Double {
        skipWhitespace()
        let start = pos
        if matchLiteral("NaN") { return .nan }
        if matchLiteral("Infinity") { return .infinity }
        if matchLiteral("-Infinity") { return -.infinity }
        var negative = false
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        // Integer part: 0 | [1-9][0-9]*
        guard pos < bytes.count, isDigit(bytes[pos]) else {
            pos = start
            throw error("expected a number, found \(found)")
        }
        // Digits are gathered into `mantissa` (while they fit) for the exact fast path below.
        var mantissa: UInt64 = 0
        var digits = 0, fractionDigits = 0
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < bytes.count && isDigit(bytes[pos]) {
                throw error("leading zeros are not allowed in JSON numbers", at: start)
            }
        } else {
            while pos < bytes.count && isDigit(bytes[pos]) {
                mantissa = mantissa &* 10 &+ UInt64(bytes[pos] - UInt8(ascii: "0"))
                digits += 1
                pos += 1
            }
        }
        var hasExponent = false
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < bytes.count, isDigit(bytes[pos]) else {
                throw error("expected a digit after the decimal point")
            }
            while pos < bytes.count && isDigit(bytes[pos]) {
                mantissa = mantissa &* 10 &+ UInt64(bytes[pos] - UInt8(ascii: "0"))
                digits += 1
                fractionDigits += 1
                pos += 1
            }
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            hasExponent = true
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard pos < bytes.count, isDigit(bytes[pos]) else { throw error("expected a digit in the exponent") }
            while pos < bytes.count && isDigit(bytes[pos]) { pos += 1 }
        }
        if !convert { return 0 }
        // Clinger's fast path: with at most 15 digits the mantissa is an exact double, and so is 10^k for
        // k <= 22, so one IEEE division is the correctly rounded value (what strtod would return).
        if !hasExponent && digits <= 15 && fractionDigits <= 22 {
            let value =
                fractionDigits == 0 ? Double(mantissa) : Double(mantissa) / JSONReader.powersOfTen[fractionDigits]
            return negative ? -value : value
        }
        return parseWithStrtod(start..<pos)
    }

    private static let powersOfTen: [Double] = (0...22).map { k in (0..<k).reduce(1.0) { r, _ in r * 10 } }

    private func parseWithStrtod(_ range: Range<Int>) -> Double {
        let count = range.count
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            for i in 0..<count { buffer[i] = CChar(bitPattern: bytes[range.lowerBound + i]) }
            buffer[count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    /// Reads a number that must be a whole number (ids); `what` names the field in the error.
    mutating func readInteger(_ what: String) throws -> Int {
        skipWhitespace()
        let start = pos
        let value = try readNumber()
        guard value.isFinite, value == value.rounded(), abs(value) < 9.0e15 else {
            throw error("\(what) must be a whole number, found \(value)", at: start)
        }
        return Int(value)
    }

    mutating func readBool() throws -> Bool {
        skipWhitespace()
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw error("expected true or false, found \(found)")
    }

    mutating func readNull() throws {
        skipWhitespace()
        if !matchLiteral("null") { throw error("expected null, found \(found)") }
    }

    /// Consumes one value of any kind without building it (fast: numbers are scanned, not converted).
    mutating func skipValue() throws {
        switch try peekKind() {
        case .object: try readObject { r, _ in try r.skipValue() }
        case .array: try readArray { r, _ in try r.skipValue() }
        case .string: try skipString()
        case .number: try skipNumber()
        case .bool: _ = try readBool()
        case .null: try readNull()
        }
    }

    private mutating func skipString() throws {
        let start = pos
        pos += 1  // opening quote
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; return }
            if c == UInt8(ascii: "\\") { pos += 2; continue }
            if c < 0x20 { throw error("control character inside a string (strings must be on one line)") }
            pos += 1
        }
        throw error("unexpected end of file inside a string that starts here", at: start)
    }

    private mutating func skipNumber() throws { _ = try scanNumber(convert: false) }

    // MARK: Helpers

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= bytes.count else { return false }
        let p = literal.utf8Start
        for i in 0..<n where bytes[pos + i] != p[i] { return false }
        pos += n
        return true
    }
}
