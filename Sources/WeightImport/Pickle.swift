import Foundation
import NN

/// A refused or malformed pickle; the message names the problem and, where there is one, the byte offset.
public struct PickleError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The few Python callables that a weight pickle may name. Nothing is ever called: the reader rebuilds
/// what each would have produced from plain data (tensors, arrays, dicts). Any other GLOBAL is refused.
public enum PickleReconstructor: Equatable, Sendable {
    case orderedDict
    case rebuildTensorV2, rebuildTensor, rebuildParameter, rebuildParameterWithState
    /// A storage class (`torch.FloatStorage`, ..., `torch.UntypedStorage`), only as a persistent id's type.
    case storageType(SafeTensorsDType?, name: String)
    case numpyReconstruct, numpyNDArray, numpyDType, numpyFromBuffer, numpyScalar
    /// `_codecs.encode(text, "latin1")`: how protocol-2 pickles written by Python 3 store bytes.
    case codecsEncode

    static let storageTypes: [String: SafeTensorsDType?] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ByteStorage": .u8, "BoolStorage": .bool,
        "ShortStorage": nil, "CharStorage": nil, "UntypedStorage": .u8
    ]

    /// The allow-list: module and name as written in the pickle (Python 2 module names are mapped).
    static func lookup(module: String, name: String) -> PickleReconstructor? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch", _), ("torch.storage", "UntypedStorage"):
            if let t = storageTypes[name] { return .storageType(t, name: name) }
            return nil
        case ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"):
            return .numpyReconstruct
        case ("numpy", "ndarray"): return .numpyNDArray
        case ("numpy", "dtype"): return .numpyDType
        case ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"): return .numpyFromBuffer
        case ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"): return .numpyScalar
        case ("_codecs", "encode"): return .codecsEncode
        default: return nil
        }
    }

    static let allowedNames =
        "collections.OrderedDict, torch._utils._rebuild_tensor_v2/_rebuild_tensor/_rebuild_parameter, torch storage "
        + "classes, numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype, numpy.core.numeric._frombuffer, "
          + "numpy.core.multiarray.scalar, _codecs.encode"
}

/// A value on the pickle stack. Containers and rebuilt objects live in the document's node table and are
/// referred to by index, so nothing is recursive (a hostile, deeply nested pickle cannot overflow the
/// stack when it is built or freed) and shared or cyclic references are harmless.
public enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits (little-endian two's complement bytes).
    case bigInt(Data)
    case float(Double)
    /// A Python `str` (UTF-8 bytes).
    case string(Data)
    /// Python `bytes`/`bytearray`, or a Python 2 `str`.
    case bytes(Data)
    case global(PickleReconstructor, String)
    case node(Int)
}

/// A numpy array's dtype: its type code ("f4", "<f8", ...) and byte order.
public struct NumpyDType {
    public var code: String
    public var byteOrder: Character = "="
}

/// A numpy array rebuilt from a pickle: shape, element type and raw data (little-endian, C order once
/// built).
public struct NumpyArray {
    public var shape: [Int]
    public var dtype: SafeTensorsDType?
    public var dtypeCode: String
    public var data: Data?
}

/// A storage named by a torch checkpoint's persistent id: `(storage, <type>, key, location, numel)`.
public struct TorchStorageRef {
    public var key: String
    public var dtype: SafeTensorsDType?
    public var typeName: String
    public var count: Int
}

/// A tensor view of a storage (`_rebuild_tensor_v2(storage, offset, size, stride, ...)`).
public struct TorchTensorRef {
    public var storage: TorchStorageRef
    public var offset: Int
    public var shape: [Int]
    public var strides: [Int]
}

public struct PickleDict {
    public private(set) var keys: [PickleValue] = []
    public private(set) var values: [PickleValue] = []
    private var index: [Key: Int] = [:]

    enum Key: Hashable { case str(Data), int(Int), bool(Bool), none }

    static func key(_ v: PickleValue) -> Key? {
        switch v {
        case .string(let d), .bytes(let d): return .str(d)  // Python 2 str keys equal their text
        case .int(let i): return .int(i)
        case .bool(let b): return .bool(b)
        case .none: return Key.none
        default: return nil
        }
    }

    mutating func set(_ k: PickleValue, _ v: PickleValue) {
        if let h = Self.key(k) {
            if let i = index[h] { values[i] = v; return }
            index[h] = keys.count
        }
        keys.append(k); values.append(v)
    }

    public var count: Int { keys.count }

    public subscript(_ name: String) -> PickleValue? {
        guard let i = index[.str(Data(name.utf8))] else { return nil }
        return values[i]
    }
}

public enum PickleNode {
    case list([PickleValue])
    case tuple([PickleValue])
    case dict(PickleDict)
    case array(NumpyArray)
    case dtype(NumpyDType)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)
}

/// A parsed pickle: the root value and the node table it refers to.
public struct PickleDocument {
    public var root: PickleValue
    public var nodes: [PickleNode]
    /// Byte offset just after the STOP opcode (several pickles may follow each other in one file).
    public var end: Int

    public func dict(_ v: PickleValue) -> PickleDict? {
        if case .node(let i) = v, case .dict(let d) = nodes[i] { return d }
        return nil
    }
    public func sequence(_ v: PickleValue) -> [PickleValue]? {
        if case .node(let i) = v {
            switch nodes[i] {
            case .tuple(let t), .list(let t): return t;
            default: return nil
            }
        }
        return nil
    }
    public func text(_ v: PickleValue) -> String? {
        switch v {
        case .string(let d): return String(decoding: d, as: UTF8.self)
        case .bytes(let d): return String(d.map { Character(Unicode.Scalar($0)) })  // latin-1
        default: return nil
        }
    }
    public func array(_ v: PickleValue) -> NumpyArray? {
        if case .node(let i) = v, case .array(let a) = nodes[i] { return a }
        return nil
    }
    public func tensor(_ v: PickleValue) -> TorchTensorRef? {
        if case .node(let i) = v, case .tensor(let t) = nodes[i] { return t }
        return nil
    }
    /// A short description of a value for messages (never recursive).
    public func kind(_ v: PickleValue) -> String {
        switch v {
        case .none: return "None"
        case .bool: return "bool"
        case .int(let i): return "int \(i)"
        case .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .global(_, let n): return n
        case .node(let i):
            switch nodes[i] {
            case .list(let l): return "list of \(l.count)"
            case .tuple(let t): return "tuple of \(t.count)"
            case .dict(let d): return "dict of \(d.count)"
            case .array(let a): return "numpy array \(a.shape)"
            case .dtype: return "numpy dtype"
            case .storage: return "storage"
            case .tensor(let t): return "tensor \(t.shape)"
            }
        }
    }
}

/// A reader for the Python pickles that weight files use (protocols 2-5 and the simple protocol 0/1
/// opcodes), limited to an allow-list of reconstructors. It interprets the opcodes as data only: no
/// code runs, no file is touched, every length is checked against the bytes that remain before anything
/// is allocated, and the stack, nesting and object counts are bounded.
public struct PickleReader {
    public static let maxStack = 1_000_000
    public static let maxNesting = 1_000
    public static let maxNodes = 2_000_000
    public static let maxMemo = 2_000_000

    /// How persistent ids are resolved: `torch` turns `('storage', type, key, location, numel, ...)` into
    /// storage references; `none` refuses them (a plain pickle has none).
    public enum PersistentIDs { case none, torch }

    public static func load(_ data: Data, from start: Int = 0, persistentIDs: PersistentIDs = .none) throws
        -> PickleDocument
    {
        try data.withUnsafeBytes { raw in
            var m = Machine(bytes: raw, pos: start, persistent: persistentIDs)
            return try m.run()
        }
    }
}

private struct Machine {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let persistent: PickleReader.PersistentIDs
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    var nodes: [PickleNode] = []
    var opStart = 0
    var opName = ""

    init(bytes: UnsafeRawBufferPointer, pos: Int, persistent: PickleReader.PersistentIDs) {
        self.bytes = bytes; self.pos = pos; self.persistent = persistent
    }

    func fail(_ m: String) -> PickleError { PickleError("pickle: \(m) (\(opName) at byte offset \(opStart))") }

    // MARK: reading

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= bytes.count - pos else {
            throw fail(
                n < 0 ? "negative length \(n)" : "truncated: needs \(n) more bytes but only \(bytes.count - pos) remain"
            )
        }
    }
    mutating func u8() throws -> Int { try need(1); defer { pos += 1 }; return Int(bytes[pos]) }
    mutating func uint(_ n: Int) throws -> UInt64 {
        try need(n)
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[pos + i]) << (8 * UInt64(i)) }
        pos += n
        return v
    }
    mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.count - pos) else {
            throw fail("declares \(v) bytes but only \(bytes.count - pos) remain (truncated or corrupted)")
        }
        return Int(v)
    }
    mutating func take(_ n: Int) throws -> Data {
        try need(n)
        defer { pos += n }
        return Data(bytes: bytes.baseAddress! + pos, count: n)
    }
    mutating func line() throws -> String {
        var end = pos
        while end < bytes.count && bytes[end] != 0x0A {
            end += 1
            guard end - pos <= 256 else { throw fail("text argument longer than 256 bytes") }
        }
        guard end < bytes.count else { throw fail("truncated: text argument without a newline") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<end]), as: UTF8.self)
        pos = end + 1
        return s
    }

    // MARK: stack

    mutating func push(_ v: PickleValue) throws {
        guard stack.count < PickleReader.maxStack else {
            throw fail("stack grows beyond \(PickleReader.maxStack) items")
        }
        stack.append(v)
    }
    mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        if let m = marks.last, stack.count < m { throw fail("pops across a MARK") }
        return v
    }
    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack") }
        guard m <= stack.count else { throw fail("corrupted MARK") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }
    mutating func newNode(_ n: PickleNode) throws -> PickleValue {
        guard nodes.count < PickleReader.maxNodes else { throw fail("more than \(PickleReader.maxNodes) objects") }
        nodes.append(n)
        return .node(nodes.count - 1)
    }
    mutating func remember(_ key: Int) throws {
        guard let top = stack.last else { throw fail("memoize on an empty stack") }
        guard memo.count < PickleReader.maxMemo || memo[key] != nil else {
            throw fail("memo grows beyond \(PickleReader.maxMemo) entries")
        }
        memo[key] = top
    }
    mutating func recall(_ key: Int) throws {
        guard let v = memo[key] else { throw fail("memo key \(key) is not defined") }
        try push(v)
    }

    // MARK: the loop

    mutating func run() throws -> PickleDocument {
        while true {
            opStart = pos
            guard pos < bytes.count else {
                opName = "end of data"
                throw fail(pos == 0 ? "empty pickle" : "truncated: the pickle ends without a STOP opcode")
            }
            let op = bytes[pos]
            pos += 1
            opName = Self.names[op] ?? String(format: "opcode 0x%02x", op)
            switch op {
            case 0x80:  // PROTO
                let v = try u8()
                guard v <= 5 else { throw fail("unsupported pickle protocol \(v)") }
            case 0x95:  // FRAME
                _ = try length(8)
            case 0x2E:  // STOP
                let root = try pop()
                return PickleDocument(root: root, nodes: nodes, end: pos)
            case 0x28:  // MARK
                guard marks.count < PickleReader.maxNesting else {
                    throw fail("nesting deeper than \(PickleReader.maxNesting) levels")
                }
                marks.append(stack.count)
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32:  // DUP
                guard let top = stack.last else { throw fail("stack underflow") }
                try push(top)
            case 0x4E: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x4B: try push(.int(try u8()))  // BININT1
            case 0x4D: try push(.int(Int(try uint(2))))  // BININT2
            case 0x8A: try push(try long(try length(1)))  // LONG1
            case 0x8B:  // LONG4
                let n = try length(4)
                guard n <= 4096 else { throw fail("integer of \(n) bytes") }
                try push(try long(n))
            case 0x49:  // INT (text)
                let s = try line()
                if s == "01" {
                    try push(.bool(true))
                } else if s == "00" {
                    try push(.bool(false))
                } else if let v = Int(s) {
                    try push(.int(v))
                } else {
                    throw fail("bad integer \"\(s)\"")
                }
            case 0x4C:  // LONG (text)
                var s = try line()
                if s.hasSuffix("L") { s.removeLast() }
                guard let v = Int(s) else { throw fail("integer \"\(s)\" is out of range") }
                try push(.int(v))
            case 0x46:  // FLOAT (text)
                let s = try line()
                guard let v = Double(s) else { throw fail("bad float \"\(s)\"") }
                try push(.float(v))
            case 0x47:  // BINFLOAT (big-endian)
                try need(8)
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(bytes[pos + i]) }
                pos += 8
                try push(.float(Double(bitPattern: v)))
            case 0x58: try push(.string(try take(try length(4))))  // BINUNICODE
            case 0x8C: try push(.string(try take(try length(1))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(try take(try length(8))))  // BINUNICODE8
            case 0x54:  // BINSTRING (Python 2 str)
                let n = Int32(truncatingIfNeeded: try uint(4))
                guard n >= 0 else { throw fail("negative length \(n)") }
                pos -= 4
                try push(.bytes(try take(try length(4))))
            case 0x55: try push(.bytes(try take(try length(1))))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(try take(try length(4))))  // BINBYTES
            case 0x43: try push(.bytes(try take(try length(1))))  // SHORT_BINBYTES
            case 0x8E, 0x96: try push(.bytes(try take(try length(8))))  // BINBYTES8, BYTEARRAY8
            case 0x98: guard !stack.isEmpty else { throw fail("stack underflow") }  // READONLY_BUFFER: no-op
            case 0x7D: try push(try newNode(.dict(PickleDict())))  // EMPTY_DICT
            case 0x5D: try push(try newNode(.list([])))  // EMPTY_LIST
            case 0x29: try push(try newNode(.tuple([])))  // EMPTY_TUPLE
            case 0x8F: try push(try newNode(.list([])))  // EMPTY_SET (kept as a list)
            case 0x64:  // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("odd number of items") }
                var d = PickleDict()
                for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
                try push(try newNode(.dict(d)))
            case 0x6C: try push(try newNode(.list(try popMark())))  // LIST
            case 0x74: try push(try newNode(.tuple(try popMark())))  // TUPLE
            case 0x91: try push(try newNode(.list(try popMark())))  // FROZENSET
            case 0x85, 0x86, 0x87:  // TUPLE1..3
                let n = Int(op) - 0x84
                var items: [PickleValue] = []
                for _ in 0..<n { items.append(try pop()) }
                try push(try newNode(.tuple(items.reversed())))
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v])
            case 0x75: try setItems(try popMark())  // SETITEMS
            case 0x61: try append([try pop()])  // APPEND
            case 0x65, 0x90: try append(try popMark())  // APPENDS, ADDITEMS
            case 0x71: try remember(try u8())  // BINPUT
            case 0x72: try remember(Int(try uint(4)))  // LONG_BINPUT
            case 0x94: try remember(memo.count)  // MEMOIZE
            case 0x70:  // PUT (text)
                guard let k = Int(try line()) else { throw fail("bad memo key") }
                try remember(k)
            case 0x68: try recall(try u8())  // BINGET
            case 0x6A: try recall(Int(try uint(4)))  // LONG_BINGET
            case 0x67:  // GET (text)
                guard let k = Int(try line()) else { throw fail("bad memo key") }
                try recall(k)
            case 0x63:  // GLOBAL
                let module = try line(), name = try line()
                try push(try global(module, name))
            case 0x93:  // STACK_GLOBAL
                let nameV = try pop(), moduleV = try pop()
                guard case .string(let n) = nameV, case .string(let m) = moduleV else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                try push(try global(String(decoding: m, as: UTF8.self), String(decoding: n, as: UTF8.self)))
            case 0x52:  // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x81:  // NEWOBJ
                let args = try pop(), cls = try pop()
                guard case .global(.orderedDict, _) = cls else {
                    throw fail("NEWOBJ of \(describe(cls)) is not allowed")
                }
                try push(try reduce(cls, args))
            case 0x62:  // BUILD
                let state = try pop()
                guard let target = stack.last else { throw fail("stack underflow") }
                try build(target, state)
            case 0x51:  // BINPERSID
                let pid = try pop()
                try push(try persistentLoad(pid))
            case 0x69, 0x6F, 0x92:
                throw fail("\(opName) (generic object construction) is not allowed in a weight file")
            case 0x50:
                throw fail("text persistent ids (PERSID) are not supported")
            case 0x82, 0x83, 0x84:
                throw fail("extension-registry opcodes are not allowed in a weight file")
            case 0x97:
                throw fail("out-of-band buffers (NEXT_BUFFER) are not supported")
            case 0x53, 0x56:
                throw fail(
                    "protocol-0 text strings are not supported; re-save the file with pickle protocol 2 or higher")
            default:
                throw fail("unknown or unsupported pickle opcode 0x\(String(op, radix: 16))")
            }
        }
    }

    static let names: [UInt8: String] = [
        0x80: "PROTO", 0x95: "FRAME", 0x2E: "STOP", 0x28: "MARK", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP",
        0x4E: "NONE", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x4A: "BININT", 0x4B: "BININT1", 0x4D: "BININT2",
        0x8A: "LONG1", 0x8B: "LONG4", 0x49: "INT", 0x4C: "LONG", 0x46: "FLOAT", 0x47: "BINFLOAT",
        0x58: "BINUNICODE", 0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
        0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8E: "BINBYTES8", 0x96: "BYTEARRAY8", 0x98: "READONLY_BUFFER",
        0x97: "NEXT_BUFFER", 0x7D: "EMPTY_DICT", 0x5D: "EMPTY_LIST", 0x29: "EMPTY_TUPLE", 0x8F: "EMPTY_SET",
        0x64: "DICT", 0x6C: "LIST", 0x74: "TUPLE", 0x91: "FROZENSET", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
        0x73: "SETITEM", 0x75: "SETITEMS", 0x61: "APPEND", 0x65: "APPENDS", 0x90: "ADDITEMS", 0x71: "BINPUT",
        0x72: "LONG_BINPUT", 0x94: "MEMOIZE", 0x70: "PUT", 0x68: "BINGET", 0x6A: "LONG_BINGET", 0x67: "GET",
        0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x52: "REDUCE", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x62: "BUILD",
        0x51: "BINPERSID", 0x50: "PERSID", 0x69: "INST", 0x6F: "OBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
        0x53: "STRING", 0x56: "UNICODE"
    ]

    // MARK: values

    mutating func long(_ n: Int) throws -> PickleValue {
        let d = try take(n)
        guard n <= 8 else { return .bigInt(d) }
        guard n > 0 else { return .int(0) }
        var v: UInt64 = 0
        for (i, b) in d.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        if n < 8 && d.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }  // sign-extend
        return .int(Int(Int64(bitPattern: v)))
    }

    func global(_ rawModule: String, _ name: String) throws -> PickleValue {
        let module = ["__builtin__": "builtins", "copy_reg": "copyreg"][rawModule] ?? rawModule
        guard let r = PickleReconstructor.lookup(module: module, name: name) else {
            throw fail(
                "refusing to load \(rawModule).\(name): only weight reconstructors are allowed "
                + "(\(PickleReconstructor.allowedNames))"
            )
        }
        return .global(r, "\(module).\(name)")
    }

    func describe(_ v: PickleValue) -> String {
        PickleDocument(root: .none, nodes: nodes, end: 0).kind(v)
    }
    func items(_ v: PickleValue) -> [PickleValue]? {
        PickleDocument(root: .none, nodes: nodes, end: 0).sequence(v)
    }
    func text(_ v: PickleValue) -> String? {
        PickleDocument(root: .none, nodes: nodes, end: 0).text(v)
    }
    func int(_ v: PickleValue, _ what: String) throws -> Int {
        guard case .int(let i) = v else { throw fail("\(what) is \(describe(v)), expected an int") }
        return i
    }
    func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
        guard let xs = items(v) else { throw fail("\(what) is \(describe(v)), expected a tuple of ints") }
        guard xs.count <= 64 else { throw fail("\(what) has \(xs.count) dimensions") }
        return try xs.map { try int($0, what) }
    }

    mutating func setItems(_ kv: [PickleValue]) throws {
        guard kv.count % 2 == 0 else { throw fail("odd number of items") }
        guard case .node(let i)? = stack.last, case .dict(var d) = nodes[i] else {
            throw fail("SETITEM(S) target is \(stack.last.map(describe) ?? "missing"), expected a dict")
        }
        nodes[i] = .list([])  // release the copy so the update below does not copy the arrays
        for j in stride(from: 0, to: kv.count, by: 2) { d.set(kv[j], kv[j + 1]) }
        nodes[i] = .dict(d)
    }

    mutating func append(_ xs: [PickleValue]) throws {
        guard case .node(let i)? = stack.last, case .list(var l) = nodes[i] else {
            throw fail("APPEND(S) target is \(stack.last.map(describe) ?? "missing"), expected a list")
        }
        nodes[i] = .tuple([])
        l.append(contentsOf: xs)
        nodes[i] = .list(l)
    }

    // MARK: reconstructors

    mutating func reduce(_ callable: PickleValue, _ argsV: PickleValue) throws -> PickleValue {
        guard case .global(let r, let name) = callable else {
            throw fail("REDUCE calls \(describe(callable)), not an allowed reconstructor")
        }
        guard let args = items(argsV) else { throw fail("\(name) arguments are \(describe(argsV)), expected a tuple") }
        func arity(_ ok: ClosedRange<Int>) throws {
            guard ok.contains(args.count) else { throw fail("\(name) takes \(ok) arguments, got \(args.count)") }
        }
        switch r {
        case .orderedDict:
            guard args.isEmpty || (args.count == 1 && (items(args[0])?.isEmpty ?? false)) else {
                throw fail("collections.OrderedDict with initial items is not supported")
            }
            return try newNode(.dict(PickleDict()))
        case .rebuildTensorV2, .rebuildTensor:
            try arity(r == .rebuildTensor ? 4...4 : 6...7)
            guard case .node(let si) = args[0], case .storage(let storage) = nodes[si] else {
                throw fail("\(name): first argument is \(describe(args[0])), expected a storage")
            }
            let offset = try int(args[1], "storage offset"), shape = try ints(args[2], "size"),
                strides = try ints(args[3], "stride")
            guard shape.count == strides.count else {
                throw fail("\(name): size \(shape) and stride \(strides) differ in length")
            }
            guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
                throw fail("\(name): negative offset, size or stride (\(offset), \(shape), \(strides))")
            }
            return try newNode(
                .tensor(TorchTensorRef(storage: storage, offset: offset, shape: shape, strides: strides)))
        case .rebuildParameter, .rebuildParameterWithState:
            try arity(r == .rebuildParameter ? 3...3 : 4...4)
            guard case .node(let i) = args[0], case .tensor = nodes[i] else {
                throw fail("\(name): data is \(describe(args[0])), expected a tensor")
            }
            return args[0]
        case .storageType:
            throw fail("\(name) may only appear as a storage type in a persistent id")
        case .numpyReconstruct:
            try arity(3...3)
            guard case .global(.numpyNDArray, _) = args[0] else {
                throw fail("\(name) of \(describe(args[0])), expected numpy.ndarray")
            }
            return try newNode(.array(NumpyArray(shape: [0], dtype: nil, dtypeCode: "", data: nil)))
        case .numpyNDArray:
            throw fail("numpy.ndarray may only be rebuilt through _reconstruct")
        case .numpyDType:
            try arity(1...3)
            guard let code = text(args[0]) else {
                throw fail("numpy.dtype of \(describe(args[0])), expected a type code")
            }
            guard code.count <= 16 else { throw fail("numpy.dtype code too long") }
            return try newNode(.dtype(NumpyDType(code: code)))
        case .numpyFromBuffer:
            try arity(4...4)
            guard case .bytes(let buf) = args[0] else {
                throw fail("\(name) buffer is \(describe(args[0])), expected bytes")
            }
            guard case .node(let di) = args[1], case .dtype(let dt) = nodes[di] else {
                throw fail("\(name) dtype is \(describe(args[1]))")
            }
            let shape = try ints(args[2], "shape")
            let order = text(args[3]) ?? "C"
            return try newNode(.array(try makeArray(shape: shape, dtype: dt, fortran: order == "F", data: buf)))
        case .numpyScalar:
            try arity(2...2)
            guard case .node(let di) = args[0], case .dtype(let dt) = nodes[di] else {
                throw fail("\(name) dtype is \(describe(args[0]))")
            }
            guard case .bytes(let buf) = args[1] else {
                throw fail("\(name) data is \(describe(args[1])), expected bytes")
            }
            return try newNode(.array(try makeArray(shape: [], dtype: dt, fortran: false, data: buf)))
        case .codecsEncode:
            try arity(2...2)
            guard case .string(let s) = args[0], let enc = text(args[1]),
                ["latin1", "latin-1", "iso-8859-1"].contains(enc.lowercased())
            else {
                throw fail("_codecs.encode is only allowed as encode(str, \"latin1\")")
            }
            return .bytes(try latin1(s))
        }
    }

    /// UTF-8 text whose code points are all <= 255, as bytes (what `str.encode("latin1")` gives).
    func latin1(_ utf8: Data) throws -> Data {
        var out = [UInt8](repeating: 0, count: utf8.count)
        var n = 0
        let ok = utf8.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> Bool in
            var i = 0
            while i < p.count {
                let b = p[i]
                if b < 0x80 {
                    out[n] = b; i += 1
                } else if b & 0xE0 == 0xC0, i + 1 < p.count, b <= 0xC3 {
                    out[n] = ((b & 0x1F) << 6) | (p[i + 1] & 0x3F); i += 2
                } else {
                    return false
                }
                n += 1
            }
            return true
        }
        guard ok else { throw fail("_codecs.encode: text has characters outside latin-1") }
        return Data(out[0..<n])
    }

    mutating func build(_ target: PickleValue, _ state: PickleValue) throws {
        guard case .node(let i) = target else { throw fail("BUILD on \(describe(target))") }
        switch nodes[i] {
        case .dict:
            // An OrderedDict's attributes (torch's `_metadata`): not needed for the weights.
            if case .none = state { return }
            guard case .node(let s) = state, case .dict = nodes[s] else {
                throw fail("BUILD of a dict with \(describe(state))")
            }
        case .dtype(var dt):
            guard let st = items(state), st.count >= 2, let order = text(st[1]), let c = order.first else {
                throw fail("numpy.dtype state is \(describe(state))")
            }
            if st.count >= 3, case .node = st[2] { throw fail("structured numpy dtypes are not supported") }
            dt.byteOrder = c
            nodes[i] = .dtype(dt)
        case .array(let a):
            guard a.data == nil else { throw fail("numpy array built twice") }
            guard var st = items(state) else { throw fail("numpy array state is \(describe(state))") }
            if st.count == 5 { st.removeFirst() }  // version
            guard st.count == 4 else { throw fail("numpy array state has \(st.count) fields") }
            let shape = try ints(st[0], "array shape")
            guard case .node(let di) = st[1], case .dtype(let dt) = nodes[di] else {
                throw fail("numpy array dtype is \(describe(st[1]))")
            }
            guard case .bool(let fortran) = st[2] else { throw fail("numpy array order flag is \(describe(st[2]))") }
            guard case .bytes(let raw) = st[3] else {
                throw fail("numpy array data is \(describe(st[3])): object arrays are not supported")
            }
            nodes[i] = .array(try makeArray(shape: shape, dtype: dt, fortran: fortran, data: raw))
        default:
            throw fail("BUILD on \(describe(target)) is not supported")
        }
    }

    func makeArray(shape: [Int], dtype dt: NumpyDType, fortran: Bool, data raw: Data) throws -> NumpyArray {
        var code = dt.code
        var order = dt.byteOrder
        if let f = code.first, "<>=|".contains(f) { order = f; code.removeFirst() }
        let table: [String: SafeTensorsDType] = [
            "f4": .f32, "f8": .f64, "f2": .f16, "i8": .i64, "i4": .i32,
            "u1": .u8, "b1": .bool, "float32": .f32, "float64": .f64,
            "float16": .f16, "int64": .i64, "int32": .i32, "uint8": .u8, "bool": .bool
        ]
        guard let st = table[code] else {
            throw fail("numpy dtype \"\(dt.code)\" is not supported (float16/32/64, int32/64, uint8, bool)")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative array shape \(shape)") }
        var n = 1
        for d in shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw fail("array shape \(shape) overflows") }
            n = p
        }
        let (bytes, o) = n.multipliedReportingOverflow(by: st.size)
        guard !o, bytes == raw.count else {
            throw fail(
                "numpy array of shape \(shape) and dtype \(dt.code) needs \(n * st.size) bytes, the pickle holds "
                + "\(raw.count)"
            )
        }
        var data = raw
        if order == ">" && st.size > 1 { data = RawTensor.byteSwapped(data, elementSize: st.size) }
        if fortran && shape.count > 1 {
            var strides = [Int](repeating: 1, count: shape.count)
            for k in 1..<shape.count { strides[k] = strides[k - 1] * shape[k - 1] }
            data = try RawTensor.gather(
                data, elementSize: st.size, offset: 0, shape: shape, strides: strides, storageCount: n)
        }
        return NumpyArray(shape: shape, dtype: st, dtypeCode: dt.code, data: data)
    }

    mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard persistent == .torch else { throw fail("persistent id in a plain pickle (not a torch checkpoint)") }
        guard let t = items(pid), t.count >= 5, text(t[0]) == "storage" else {
            throw fail("persistent id \(describe(pid)) is not a ('storage', type, key, location, numel) tuple")
        }
        guard case .global(.storageType(let dtype, let typeName), _) = t[1] else {
            throw fail("persistent id storage type is \(describe(t[1])), expected a torch storage class")
        }
        guard
            let key = text(t[2])
                ?? {
                    if case .int(let k) = t[2] { return String(k) }; return nil
                }()
        else {
            throw fail("storage key is \(describe(t[2]))")
        }
        let count = try int(t[4], "storage size")
        guard count >= 0 else { throw fail("negative storage size \(count)") }
        if t.count >= 6, case .node = t[5] { throw fail("legacy storage views are not supported") }
        return try newNode(.storage(TorchStorageRef(key: key, dtype: dtype, typeName: typeName, count: count)))
    }
}
