import Foundation
import NN

/// A tensor exactly as a checkpoint stores it: element type, shape and contiguous little-endian bytes
/// (row-major). Conversions keep the bytes, so imported values equal the originals bit for bit.
public struct RawTensor: Equatable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var data: Data

    public init(dtype: SafeTensorsDType, shape: [Int], data: Data) {
        precondition(
            data.count == shape.reduce(1, *) * dtype.size,
            "RawTensor: \(data.count) bytes for shape \(shape) of \(dtype.rawValue)")
        self.dtype = dtype; self.shape = shape; self.data = data
    }

    public var count: Int { shape.reduce(1, *) }
    public var isFloat: Bool { [.f32, .f16, .bf16, .f64].contains(dtype) }

    /// Values as Float32 (exact for F16/BF16/F32; F64 is rounded; integers converted).
    public func floats() -> [Float] {
        let n = count
        return data.withUnsafeBytes { p -> [Float] in
            switch dtype {
            case .f32: return (0..<n).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case .f16:
                return (0..<n).map {
                    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
                }
            case .bf16:
                return (0..<n).map {
                    Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16)
                }
            case .f64: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
            case .i64: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .i32: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .u8, .bool: return (0..<n).map { Float(p[$0]) }
            }
        }
    }

    /// A tensor of `shape` filled with `value` (F32, F16, BF16 or F64).
    public static func filled(_ value: Double, shape: [Int], dtype: SafeTensorsDType) -> RawTensor {
        let n = shape.reduce(1, *)
        var d = Data(count: n * dtype.size)
        d.withUnsafeMutableBytes { p in
            for i in 0..<n {
                switch dtype {
                case .f64: p.storeBytes(of: value, toByteOffset: 8 * i, as: Double.self)
                case .f16: p.storeBytes(of: Float16(value).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
                case .bf16:
                    p.storeBytes(of: UInt16(Float(value).bitPattern >> 16), toByteOffset: 2 * i, as: UInt16.self)
                default: p.storeBytes(of: Float(value), toByteOffset: 4 * i, as: Float.self)
                }
            }
        }
        return RawTensor(dtype: dtype, shape: shape, data: d)
    }

    /// Rows (first dimension) rearranged: row i of the result is row `source[i]` of self, or zeros where
    /// `source[i]` is nil.
    public func rows(_ source: [Int?]) -> RawTensor {
        let rowBytes = shape.isEmpty ? dtype.size : count / max(shape[0], 1) * dtype.size
        var out = Data(count: source.count * rowBytes)
        out.withUnsafeMutableBytes { o in
            data.withUnsafeBytes { s in
                for (i, r) in source.enumerated() {
                    guard let r else { continue }
                    precondition(r >= 0 && r < shape[0], "RawTensor.rows: row \(r) of \(shape[0])")
                    (o.baseAddress! + i * rowBytes).copyMemory(from: s.baseAddress! + r * rowBytes, byteCount: rowBytes)
                }
            }
        }
        var s = shape
        s[0] = source.count
        return RawTensor(dtype: dtype, shape: s, data: out)
    }

    static func byteSwapped(_ d: Data, elementSize: Int) -> Data {
        var out = d
        out.withUnsafeMutableBytes { p in
            var i = 0
            while i + elementSize <= p.count {
                var a = i, b = i + elementSize - 1
                while a < b { p.swapAt(a, b); a += 1; b -= 1 }
                i += elementSize
            }
        }
        return out
    }

    /// The elements of a strided view of `storage` (`storageCount` elements of `elementSize` bytes),
    /// copied into row-major order. Every index is checked against the storage first.
    static func gather(_ storage: Data, elementSize: Int, offset: Int, shape: [Int], strides: [Int], storageCount: Int)
        throws -> Data
    {
        var n = 1
        var last = offset  // largest element index the view touches
        for (d, s) in zip(shape, strides) {
            let (p, o1) = n.multipliedReportingOverflow(by: d)
            guard !o1 else { throw PickleError("tensor shape \(shape) overflows") }
            n = p
            if d > 0 {
                let (e, o2) = (d - 1).multipliedReportingOverflow(by: s)
                let (l, o3) = last.addingReportingOverflow(e)
                guard !o2, !o3 else {
                    throw PickleError("tensor view (offset \(offset), shape \(shape), stride \(strides)) overflows")
                }
                last = l
            }
        }
        if n == 0 { return Data() }
        guard last < storageCount, storage.count / elementSize >= storageCount else {
            throw PickleError(
                "tensor view (offset \(offset), shape \(shape), stride \(strides)) reaches element \(last) of a "
                + "storage of \(storageCount)"
            )
        }
        // Row-major contiguous (ignoring size-1 dimensions): one copy.
        var expect = 1, contiguous = true
        for (d, s) in zip(shape, strides).reversed() where d != 1 {
            if s != expect { contiguous = false; break }
            expect *= d
        }
        let start = storage.startIndex
        if contiguous {
            return storage.subdata(in: (start + offset * elementSize)..<(start + (offset + n) * elementSize))
        }
        var out = Data(count: n * elementSize)
        out.withUnsafeMutableBytes { o in
            storage.withUnsafeBytes { s in
                let rank = shape.count
                var idx = [Int](repeating: 0, count: rank)
                var src = offset
                for i in 0..<n {
                    (o.baseAddress! + i * elementSize).copyMemory(
                        from: s.baseAddress! + src * elementSize, byteCount: elementSize)
                    var k = rank - 1
                    while k >= 0 {
                        idx[k] += 1
                        src += strides[k]
                        if idx[k] < shape[k] { break }
                        src -= strides[k] * shape[k]
                        idx[k] = 0
                        k -= 1
                    }
                }
            }
        }
        return out
    }
}

/// Serialises named raw tensors as a safetensors file, keeping each tensor's element type.
public enum SafeTensorsEncoder {
    public static func encode(_ tensors: [(String, RawTensor)], metadata: [String: String]) throws -> Data {
        try SafeTensorsLayout.assemble(
            tensors.map { ($0.0, $0.1.dtype.rawValue, $0.1.shape, $0.1.data.count) },
            metadata: metadata, source: "<import>"
        ) { out in
            for (_, t) in tensors { out.append(t.data) }
        }
    }
}
