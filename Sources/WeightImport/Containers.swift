import Foundation
import NN
import ZIPFoundation

/// What a weight file holds before any renaming: named tensors in file order, plus the file's
/// top-level text/bool entries (e.g. Detectron2's `__author__`).
public struct CheckpointContents {
    public enum Container: String, Sendable {
        case torchZip = "PyTorch zip checkpoint"
        case torchLegacy = "PyTorch legacy (pre-1.6) checkpoint"
        case pickle = "pickle of numpy arrays"
        case safetensors = "safetensors"
    }
    public var container: Container
    public var tensors: [(name: String, tensor: RawTensor)]
    public var info: [String: String] = [:]
    public var notes: [String] = []
    /// Metadata of a safetensors file (passed through).
    public var metadata: [String: String] = [:]
}

/// Reading the three containers: PyTorch's zip format (`torch.save` since 1.6), PyTorch's legacy stream
/// format, and plain pickles of numpy arrays (Detectron2 / Caffe2 `.pkl`).
public enum CheckpointReader {
    /// Largest accepted `data.pkl` / pickle structure outside the tensor data.
    public static let maxPickleBytes = 1 << 28
    /// Largest accepted zip entry count.
    public static let maxZipEntries = 100_000

    /// The size of a file in bytes.
    static func fileSize(_ path: String) throws -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw CheckpointError(file: path, "cannot read the file (\(String(cString: strerror(errno))))")
        }
        return Int(st.st_size)
    }

    static func fail(_ file: String, _ m: String) -> CheckpointError { CheckpointError(file: file, m) }

    // MARK: PyTorch zip

    public static func readTorchZip(_ url: URL) throws -> CheckpointContents {
        let file = url.path
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw fail(file, "is not a readable zip archive (\(error))")
        }
        let fileSize = try Self.fileSize(file)
        var entries: [String: Entry] = [:]
        var n = 0
        for e in archive {
            n += 1
            guard n <= maxZipEntries else { throw fail(file, "zip archive has more than \(maxZipEntries) entries") }
            let p = e.path
            let parts = p.split(separator: "/", omittingEmptySubsequences: false)
            if p.hasPrefix("/") || p.contains("\\") || parts.contains("..") {
                throw fail(
                    file,
                    "zip entry path \"\(p)\" points outside the archive (absolute or with \"..\"); refusing the file")
            }
            entries[p] = e
        }
        let pkls = entries.keys.filter {
            $0 == "data.pkl" || ($0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2)
        }
        guard pkls.count == 1, let pklPath = pkls.first else {
            throw fail(
                file,
                pkls.isEmpty
                    ? "zip archive has no <name>/data.pkl: not a PyTorch checkpoint"
                    : "zip archive has several data.pkl entries (\(pkls.sorted().joined(separator: ", ")))")
        }
        let prefix = String(pklPath.dropLast("data.pkl".count))
        if entries[prefix + "constants.pkl"] != nil || entries.keys.contains(where: { $0.hasPrefix(prefix + "code/") })
        {
            throw fail(
                file,
                "is a TorchScript archive (torch.jit.save); save the weights with torch.save(model.state_dict(), path) "
                + "instead"
            )
        }
        if let bo = entries[prefix + "byteorder"] {
            let order = String(
                decoding: try readEntry(archive, bo, expected: nil, limit: 16, fileSize: fileSize, file: file),
                as: UTF8.self)
            guard order == "little" else {
                throw fail(
                    file, "stores tensors in \(order)-endian byte order; only little-endian checkpoints are supported")
            }
        }
        let pkl = try readEntry(
            archive, entries[pklPath]!, expected: nil, limit: maxPickleBytes, fileSize: fileSize, file: file)
        let doc: PickleDocument
        do { doc = try PickleReader.load(pkl, persistentIDs: .torch) } catch let e as PickleError {
            throw fail(file, "\(pklPath): \(e.message)")
        }
        var storages: [String: Data] = [:]
        let resolve: (TorchStorageRef) throws -> Data = { ref in
            if let d = storages[ref.key] { return d }
            guard let dtype = ref.dtype else {
                throw fail(file, "storage \(ref.key) has type torch.\(ref.typeName), which is not supported")
            }
            let (bytes, o) = ref.count.multipliedReportingOverflow(by: dtype.size)
            guard !o else { throw fail(file, "storage \(ref.key) declares \(ref.count) elements") }
            guard let e = entries[prefix + "data/" + ref.key] else {
                throw fail(file, "storage entry \(prefix)data/\(ref.key) is missing from the archive")
            }
            let d = try readEntry(archive, e, expected: bytes, limit: Int.max, fileSize: fileSize, file: file)
            storages[ref.key] = d
            return d
        }
        var out = try contents(doc, container: .torchZip, file: file, resolve: resolve)
        out.notes.insert(
            "archive \(prefix.isEmpty ? "(no prefix)" : String(prefix.dropLast())), \(storages.count) storages", at: 0)
        return out
    }

    /// One zip entry in memory, after checking its declared size (against what the checkpoint needs, the
    /// limit, the file size and deflate's largest ratio) and, while inflating, against what comes out.
    static func readEntry(_ archive: Archive, _ e: Entry, expected: Int?, limit: Int, fileSize: Int, file: String)
        throws -> Data
    {
        let path = e.path
        guard e.type == .file else { throw fail(file, "zip entry \(path) is not a file") }
        let declared = e.uncompressedSize
        if let expected, declared != UInt64(expected) {
            throw fail(file, "zip entry \(path) declares \(declared) bytes but the checkpoint needs \(expected)")
        }
        guard declared <= UInt64(limit) else {
            throw fail(file, "zip entry \(path) declares \(declared) bytes, over the limit of \(limit)")
        }
        if e.isCompressed {
            guard declared <= e.compressedSize &* 1100 + 1024 else {
                throw fail(
                    file,
                    "zip entry \(path) declares \(declared) bytes from \(e.compressedSize) compressed bytes, more than "
                    + "deflate can produce (zip bomb?)"
                )
            }
        } else {
            guard declared == e.compressedSize, declared <= UInt64(fileSize) else {
                throw fail(
                    file,
                    "zip entry \(path) declares \(declared) bytes but the file has only \(fileSize) (truncated or "
                    + "corrupted)"
                )
            }
        }
        let size = Int(declared)
        var out = Data()
        out.reserveCapacity(min(size, 1 << 26))
        let crc: CRC32
        do {
            crc = try archive.extract(e, bufferSize: 1 << 20, skipCRC32: false) { chunk in
                guard out.count + chunk.count <= size else {
                    throw CheckpointError(
                        file: file, "zip entry \(path) inflates to more than its declared \(size) bytes (zip bomb?)")
                }
                out.append(chunk)
            }
        } catch let c as CheckpointError { throw c } catch {
            throw fail(file, "cannot read zip entry \(path) (\(error))")
        }
        guard out.count == size else {
            throw fail(file, "zip entry \(path) holds \(out.count) bytes, declared \(size) (truncated)")
        }
        guard crc == e.checksum else { throw fail(file, "zip entry \(path) fails its CRC check (corrupted)") }
        return out
    }

    // MARK: PyTorch legacy stream

    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    /// Whether `data` starts with the legacy format's magic-number pickle.
    static func isLegacyTorch(_ data: Data) -> Bool {
        guard let doc = try? PickleReader.load(data.prefix(64)), case .bigInt(let b) = doc.root else { return false }
        return Array(b) == legacyMagic
    }

    public static func readTorchLegacy(_ data: Data, file: String) throws -> CheckpointContents {
        func load(_ from: Int, _ pid: PickleReader.PersistentIDs = .none, _ what: String) throws -> PickleDocument {
            do { return try PickleReader.load(data, from: from, persistentIDs: pid) } catch let e as PickleError {
                throw fail(file, "\(what): \(e.message)")
            }
        }
        let magic = try load(0, .none, "magic number")
        guard case .bigInt(let b) = magic.root, Array(b) == legacyMagic else {
            throw fail(file, "is not a legacy PyTorch checkpoint")
        }
        let proto = try load(magic.end, .none, "protocol version")
        guard case .int(1001) = proto.root else {
            throw fail(file, "legacy PyTorch protocol version \(proto.kind(proto.root)) is not supported")
        }
        let sys = try load(proto.end, .none, "system info")
        if let d = sys.dict(sys.root), case .bool(false)? = d["little_endian"] {
            throw fail(file, "was saved on a big-endian machine; only little-endian checkpoints are supported")
        }
        let main = try load(sys.end, .torch, "object")
        let keysDoc = try load(main.end, .none, "storage keys")
        guard let keys = keysDoc.sequence(keysDoc.root)?.map({ keysDoc.text($0) }), keys.allSatisfy({ $0 != nil })
        else {
            throw fail(file, "storage key list is \(keysDoc.kind(keysDoc.root))")
        }
        var refs: [String: TorchStorageRef] = [:]
        for node in main.nodes { if case .storage(let s) = node { refs[s.key] = s } }
        var storages: [String: Data] = [:]
        var pos = keysDoc.end
        for case let key? in keys {
            guard let ref = refs[key] else { throw fail(file, "storage \(key) is listed but not used") }
            guard let dtype = ref.dtype else {
                throw fail(file, "storage \(key) has type torch.\(ref.typeName), which is not supported")
            }
            guard data.count - pos >= 8 else { throw fail(file, "truncated: storage \(key) has no size") }
            let numel = data.withUnsafeBytes {
                Int64(littleEndian: $0.loadUnaligned(fromByteOffset: pos, as: Int64.self))
            }
            pos += 8
            guard numel >= 0, numel <= Int64(data.count - pos) / Int64(dtype.size), Int(numel) >= ref.count else {
                throw fail(
                    file,
                    "storage \(key) declares \(numel) elements but \(data.count - pos) bytes remain (truncated or "
                    + "corrupted)"
                )
            }
            let n = Int(numel) * dtype.size
            storages[key] = data.subdata(in: (data.startIndex + pos)..<(data.startIndex + pos + n))
            pos += n
        }
        return try contents(main, container: .torchLegacy, file: file) { ref in
            guard let d = storages[ref.key] else { throw fail(file, "storage \(ref.key) has no data in the file") }
            return d
        }
    }

    // MARK: pickles of numpy arrays

    public static func readPickle(_ data: Data, file: String) throws -> CheckpointContents {
        let doc: PickleDocument
        do { doc = try PickleReader.load(data) } catch let e as PickleError { throw fail(file, e.message) }
        return try contents(doc, container: .pickle, file: file) { _ in
            throw fail(file, "a plain pickle cannot hold torch storages")
        }
    }

    // MARK: the state dict inside

    /// Finds the state dict in a loaded object: the root dict itself, or a dict under "model",
    /// "state_dict", "model_state" or "net". A Caffe2 detection file ("blobs") is refused.
    static func contents(
        _ doc: PickleDocument, container: CheckpointContents.Container, file: String,
        resolve: (TorchStorageRef) throws -> Data
    ) throws -> CheckpointContents {
        guard let root = doc.dict(doc.root) else {
            throw fail(file, "holds a \(doc.kind(doc.root)), expected a dict of tensors (a state dict)")
        }
        func isTensor(_ v: PickleValue) -> Bool { doc.tensor(v) != nil || doc.array(v) != nil }
        func tensorCount(_ d: PickleDict) -> Int { d.values.reduce(0) { $0 + (isTensor($1) ? 1 : 0) } }
        var info: [String: String] = [:]
        var notes: [String] = []
        var dict = root
        if root["blobs"] != nil, tensorCount(root) == 0 {
            throw fail(
                file,
                "is a Detectron (Caffe2) detection checkpoint (\"blobs\"); convert it with Detectron2 first, or use "
                + "the Detectron2 model zoo's .pkl"
            )
        }
        if tensorCount(root) == 0 {
            var found = false
            for key in ["model", "state_dict", "model_state", "model_state_dict", "net", "module"] {
                if let v = root[key], let d = doc.dict(v), tensorCount(d) > 0 {
                    dict = d; found = true
                    notes.append("state dict taken from the file's \"\(key)\" entry")
                    break
                }
            }
            guard found else {
                let keys = root.keys.prefix(10).compactMap { doc.text($0) }.joined(separator: ", ")
                throw fail(file, "holds no tensors (top-level keys: \(keys.isEmpty ? "none" : keys))")
            }
        }
        for (k, v) in zip(root.keys, root.values) {
            guard let name = doc.text(k) else { continue }
            switch v {
            case .string, .bytes: if let t = doc.text(v), t.count <= 200 { info[name] = t }
            case .bool(let b): info[name] = b ? "True" : "False"
            case .int(let i): info[name] = String(i)
            default: break
            }
        }
        var tensors: [(String, RawTensor)] = []
        var skipped: [String] = []
        for (k, v) in zip(dict.keys, dict.values) {
            guard let name = doc.text(k) else { throw fail(file, "state dict has a non-text key (\(doc.kind(k)))") }
            if let t = doc.tensor(v) {
                guard let dtype = t.storage.dtype else {
                    throw fail(file, "\(name): torch.\(t.storage.typeName) tensors are not supported")
                }
                let storage = try resolve(t.storage)
                let data: Data
                do {
                    data = try RawTensor.gather(
                        storage, elementSize: dtype.size, offset: t.offset, shape: t.shape, strides: t.strides,
                        storageCount: t.storage.count)
                } catch let e as PickleError { throw fail(file, "\(name): \(e.message)") }
                tensors.append((name, RawTensor(dtype: dtype, shape: t.shape, data: data)))
            } else if let a = doc.array(v) {
                guard let dtype = a.dtype, let data = a.data else {
                    throw fail(file, "\(name): numpy array without data")
                }
                tensors.append((name, RawTensor(dtype: dtype, shape: a.shape, data: data)))
            } else {
                skipped.append(name)
            }
        }
        if !skipped.isEmpty {
            notes.append(
                "skipped \(skipped.count) non-tensor entr\(skipped.count == 1 ? "y" : "ies"): "
                + "\(skipped.prefix(8).joined(separator: ", "))\(skipped.count > 8 ? ", ..." : "")"
            )
        }
        return CheckpointContents(container: container, tensors: tensors, info: info, notes: notes)
    }
}
