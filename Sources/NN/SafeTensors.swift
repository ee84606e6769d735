import Foundation
import Engine
import FileSupport

/// An error reading or writing a checkpoint; the message names the file and the problem.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// Element types of the safetensors format that this reader understands.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", u8 = "U8", bool = "BOOL"
    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .f64, .i64: return 8
        case .u8, .bool: return 1
        }
    }
}

/// A parsed safetensors file: 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the data.
/// Every offset, size and shape is validated before any tensor is read, so a truncated or corrupted
/// file is reported, never read out of bounds.
public struct SafeTensorsFile {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        public let range: Range<Int>  // absolute byte range in the file
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    /// Tensor names in file order (by data offset).
    public let names: [String]
    private let bytes: Data

    /// Largest accepted JSON header (the format's reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(contentsOf url: URL) throws {
        let name = url.path
        if let problem = InputFileKind.problem(name) {
            throw CheckpointError(file: name, problem + ", expected a safetensors checkpoint")
        }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw CheckpointError(file: name, "cannot read file (\(Self.reason(error)))")
        }
        try self.init(data: data, name: name)
    }

    public init(data: Data, name: String) throws {
        path = name
        bytes = data
        func fail(_ m: String) -> CheckpointError { CheckpointError(file: name, m) }
        guard data.count >= 8 else {
            throw fail(
                data.isEmpty
                    ? "empty file, not a safetensors checkpoint"
                    : "truncated: \(data.count) bytes, shorter than the 8-byte header length")
        }
        let n = data.withUnsafeBytes { raw -> UInt64 in
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return v
        }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw fail(
                "header length \(n) bytes is over the limit of \(Self.maxHeaderBytes); not a safetensors file or "
                + "corrupted"
            )
        }
        let headerLen = Int(n)
        guard 8 + headerLen <= data.count else {
            throw fail(
                "truncated: header declares \(headerLen) bytes but the file has only \(data.count - 8) after the length"
            )
        }
        let headerData = data.subdata(in: 8..<(8 + headerLen))
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw fail("header is not valid JSON (\(Self.reason(error)))")
        }
        guard let dict = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataStart = 8 + headerLen
        let dataSize = data.count - dataStart
        var meta: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (key, value) in dict {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__ value for \"\(k)\" is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("entry \"\(key)\" is not an object") }
            guard let dts = info["dtype"] as? String else { throw fail("entry \"\(key)\" has no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dts) else {
                throw fail("entry \"\(key)\" has unsupported dtype \(dts)")
            }
            guard let shapeAny = info["shape"] as? [Any] else { throw fail("entry \"\(key)\" has no shape list") }
            var shape: [Int] = []
            var elements = 1
            for d in shapeAny {
                guard let num = d as? NSNumber, let v = Int(exactly: num.doubleValue), v >= 0 else {
                    throw fail("entry \"\(key)\" has an invalid shape \(shapeAny)")
                }
                let (p, overflow) = elements.multipliedReportingOverflow(by: v)
                guard !overflow, p <= Int(Int32.max) * 16 else {
                    throw fail("entry \"\(key)\" has an impossibly large shape \(shapeAny)")
                }
                elements = p
                shape.append(v)
            }
            guard let offs = info["data_offsets"] as? [Any], offs.count == 2,
                let b0 = (offs[0] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                let b1 = (offs[1] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) })
            else {
                throw fail("entry \"\(key)\" has invalid data_offsets")
            }
            guard b0 >= 0, b1 >= b0, b1 <= dataSize else {
                throw fail(
                    "entry \"\(key)\" has data_offsets [\(b0), \(b1)] outside the \(dataSize) data bytes (truncated or "
                    + "corrupted file)"
                )
            }
            guard b1 - b0 == elements * dtype.size else {
                throw fail(
                    "entry \"\(key)\" holds \(b1 - b0) bytes but shape \(shape) of \(dts) needs "
                    + "\(elements * dtype.size)"
                )
            }
            entries[key] = Entry(name: key, dtype: dtype, shape: shape, range: (dataStart + b0)..<(dataStart + b1))
        }
        // Entries must not overlap (each byte belongs to one tensor).
        let sorted = entries.values.sorted {
            ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound)
        }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw fail("entries \"\(a.name)\" and \"\(b.name)\" overlap")
        }
        metadata = meta
        self.entries = entries
        names = sorted.map { $0.name }
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError {
            return u.localizedDescription
        }
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }

    /// A float tensor by name (F32, F16, BF16 and F64 are converted to Float32).
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw CheckpointError(file: path, "no tensor named \"\(name)\"") }
        let t = Tensor(uninitialized: e.shape)
        let out = t.data
        let n = e.count
        try bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!.advanced(by: e.range.lowerBound)
            switch e.dtype {
            case .f32:
                memcpy(out, p, n * 4)  // safetensors is little-endian, as is every supported host
            case .f16:
                for i in 0..<n {
                    out[i] = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .bf16:
                for i in 0..<n {
                    out[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                }
            case .f64:
                for i in 0..<n { out[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            default:
                throw CheckpointError(
                    file: path, "tensor \"\(name)\" has dtype \(e.dtype.rawValue), expected a float type")
            }
        }
        return t
    }

    /// An integer tensor's values by name (I64, I32, U8, BOOL).
    public func integers(_ name: String) throws -> [Int64] {
        guard let e = entries[name] else { throw CheckpointError(file: path, "no tensor named \"\(name)\"") }
        return try bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!.advanced(by: e.range.lowerBound)
            switch e.dtype {
            case .i64: return (0..<e.count).map { p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
            case .i32: return (0..<e.count).map { Int64(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .u8, .bool: return (0..<e.count).map { Int64(p.load(fromByteOffset: $0, as: UInt8.self)) }
            default:
                throw CheckpointError(
                    file: path, "tensor \"\(name)\" has dtype \(e.dtype.rawValue), expected an integer type")
            }
        }
    }
}

/// Writes safetensors files (F32 tensors and I64 values) atomically: temp file, fsync, rename.
public struct SafeTensorsWriter {
    public enum Value {
        case float(Tensor)
        case int64([Int64], shape: [Int])
    }

    public var entries: [(String, Value)] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public mutating func add(_ name: String, _ t: Tensor) { entries.append((name, .float(t))) }
    public mutating func add(_ name: String, int64 v: Int64) { entries.append((name, .int64([v], shape: []))) }

    /// The file's bytes.
    public func serialized() throws -> Data {
        let layout = entries.map { name, v -> SafeTensorsLayout.Entry in
            switch v {
            case .float(let t): return (name, "F32", t.shape, t.count * 4)
            case .int64(let vals, let s): return (name, "I64", s, vals.count * 8)
            }
        }
        return try SafeTensorsLayout.assemble(layout, metadata: metadata, source: "<writer>") { out in
            for (_, v) in entries {
                switch v {
                case .float(let t): out.append(UnsafeBufferPointer(start: t.data, count: t.count))
                case .int64(let vals, _): vals.withUnsafeBufferPointer { out.append($0) }
                }
            }
        }
    }

    /// Serialises and writes atomically to `url`.
    public func write(to url: URL) throws {
        do { try AtomicFile.write(try serialized(), to: url) } catch let e as AtomicWriteError {
            throw CheckpointError(file: e.file, e.message)
        }
    }
}

/// The byte layout of a safetensors file, written once for every writer: an 8-byte little-endian header length,
/// the JSON header (sorted keys, space-padded to a multiple of 8) naming each tensor's dtype, shape and byte
/// range, then the tensors' bytes in entry order.
public enum SafeTensorsLayout {
    public typealias Entry = (name: String, dtype: String, shape: [Int], bytes: Int)

    /// The file for `entries` and `metadata`; `payload` appends the tensors' bytes in entry order. `source` names
    /// the writer in errors (duplicate or reserved names).
    public static func assemble(
        _ entries: [Entry], metadata: [String: String], source: String,
        payload: (inout Data) -> Void
    ) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        var seen = Set<String>()
        for e in entries {
            guard seen.insert(e.name).inserted else {
                throw CheckpointError(file: source, "duplicate tensor name \"\(e.name)\"")
            }
            guard e.name != "__metadata__" else { throw CheckpointError(file: source, "\"__metadata__\" is reserved") }
            header[e.name] =
                ["dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + e.bytes]] as [String: Any]
            offset += e.bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        payload(&out)
        return out
    }
}
