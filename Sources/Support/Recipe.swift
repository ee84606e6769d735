import Foundation
import Yams

/// A problem in a YAML recipe or a `--set` override; names the file and the key.
public struct RecipeError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// YAML recipes decoded one-to-one into Codable config structs.
///
/// The schema is the config type's default value: it is encoded (snake_case keys), the YAML file and then
/// the `key.path=value` overrides are merged over it, and the result is decoded. Every key of the YAML
/// file and of the overrides must exist in the defaults, so a misspelt key is an error naming it rather
/// than a silently ignored setting.
public enum Recipe {
    /// A config stored as JSON text (`json(_:)`, e.g. in checkpoint metadata): keys missing from `text` (written
    /// before they existed) take their defaults, keys the config does not know are refused.
    public static func decode<T: Codable>(_ defaults: T, json text: String, source: String) throws -> T {
        var tree = try tree(of: defaults)
        let stored: Any
        do { stored = try JSONSerialization.jsonObject(with: Data(text.utf8)) } catch {
            throw RecipeError("\(source): not JSON (\(error))")
        }
        guard let dict = stored as? [String: Any] else { throw RecipeError("\(source): not a JSON object") }
        try merge(&tree, dict, path: "", source: source)
        return try decode(T.self, tree, source: source)
    }

    /// The defaults as a JSON tree (snake_case keys): the schema recipes are merged over.
    static func tree<T: Encodable>(of defaults: T) throws -> [String: Any] {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        guard let tree = try JSONSerialization.jsonObject(with: enc.encode(defaults)) as? [String: Any] else {
            throw RecipeError("internal: config defaults are not an object")
        }
        return tree
    }

    static func decode<T: Decodable>(_ type: T.Type, _ tree: [String: Any], source: String) throws -> T {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try dec.decode(T.self, from: JSONSerialization.data(withJSONObject: tree))
        } catch let e as DecodingError {
            throw RecipeError("\(source): \(describe(e))")
        }
    }

    public static func load<T: Codable>(_ defaults: T, file: URL?, overrides: [String] = []) throws -> T {
        var tree = try tree(of: defaults)
        if let file {
            let text: String
            do { text = try String(contentsOf: file, encoding: .utf8) } catch {
                throw RecipeError("\(file.path): cannot read recipe (\((error as NSError).localizedDescription))")
            }
            guard text.utf8.count <= maxRecipeBytes else {
                throw RecipeError(
                    "\(file.path): \(text.utf8.count) bytes is too large for a recipe (at most \(maxRecipeBytes))")
            }
            let aliases = aliasCount(text)
            guard aliases <= maxAliases else {
                throw RecipeError(
                    "\(file.path): uses \(aliases) YAML aliases (*name); at most \(maxAliases) are accepted, "
                        + "so that aliases cannot expand the recipe exponentially")
            }
            let parsed: Any?
            do { parsed = try Yams.load(yaml: text) } catch {
                throw RecipeError("\(file.path): invalid YAML: \(error)")
            }
            if let parsed {
                guard let dict = parsed as? [String: Any] else {
                    throw RecipeError("\(file.path): the recipe must be a mapping of keys to values")
                }
                try merge(&tree, dict, path: "", source: file.path)
            }
        }
        for o in overrides {
            guard let eq = o.firstIndex(of: "=") else {
                throw RecipeError("--set \(o): expected key=value (e.g. train.lr=0.01)")
            }
            let key = String(o[..<eq]).trimmingCharacters(in: .whitespaces)
            let raw = String(o[o.index(after: eq)...])
            let value: Any
            do { value = try Yams.load(yaml: raw) ?? "" } catch {
                throw RecipeError("--set \(o): cannot parse the value (\(error))")
            }
            var nested: Any = value
            for part in key.split(separator: ".").reversed() { nested = [String(part): nested] }
            guard let dict = nested as? [String: Any], !key.isEmpty else { throw RecipeError("--set \(o): empty key") }
            try merge(&tree, dict, path: "", source: "--set \(o)")
        }
        if let bad = firstNonFinite(tree, path: "") {
            throw RecipeError("\(file?.path ?? "config"): \(bad.path) is \(bad.value), not a finite number")
        }
        return try decode(T.self, tree, source: file?.path ?? "config")
    }

    /// Recipes are small: a larger file is a mistake (a data file given as --config).
    static let maxRecipeBytes = 1 << 20
    /// Recipes need no aliases; a handful are accepted, a "billion laughs" is not.
    static let maxAliases = 64

    /// How many alias uses (`*name`, outside quotes and comments) a YAML text has.
    static func aliasCount(_ text: String) -> Int {
        var count = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var quote: Character? = nil
            var previous: Character = " "
            for ch in line {
                if let q = quote {
                    if ch == q { quote = nil }
                } else if ch == "\"" || ch == "'" {
                    quote = ch
                } else if ch == "#" && (previous == " " || previous == "\t") {
                    break
                } else if ch == "*"
                    && (previous == " " || previous == "[" || previous == "," || previous == "{" || previous == ":"
                        || previous == "-")
                {
                    count += 1
                }
                previous = ch
            }
        }
        return count
    }

    /// The first NaN or infinite number in a parsed recipe (YAML's .nan / .inf), with its key.
    static func firstNonFinite(_ value: Any, path: String) -> (path: String, value: Double)? {
        switch value {
        case let d as [String: Any]:
            for k in d.keys.sorted() {
                if let bad = firstNonFinite(d[k]!, path: path.isEmpty ? k : path + "." + k) { return bad }
            }
        case let a as [Any]:
            for (i, v) in a.enumerated() { if let bad = firstNonFinite(v, path: "\(path)[\(i)]") { return bad } }
        case let x as Double where !x.isFinite:
            return (path, x)
        case let x as Float where !x.isFinite:
            return (path, Double(x))
        default:
            break
        }
        return nil
    }

    /// Merges `src` into `dst`, refusing keys that `dst` does not have and mappings where values belong.
    static func merge(_ dst: inout [String: Any], _ src: [String: Any], path: String, source: String) throws {
        for (k, v) in src {
            let full = path.isEmpty ? k : path + "." + k
            guard let existing = dst[k] else {
                let known = dst.keys.sorted().joined(separator: ", ")
                throw RecipeError(
                    "\(source): unknown key \"\(full)\" (known keys\(path.isEmpty ? "" : " under \(path)"): \(known))")
            }
            if var sub = existing as? [String: Any] {
                guard let vs = v as? [String: Any] else {
                    throw RecipeError("\(source): \"\(full)\" must be a mapping")
                }
                try merge(&sub, vs, path: full, source: source)
                dst[k] = sub
            } else {
                if v is [String: Any] { throw RecipeError("\(source): \"\(full)\" is a value, not a mapping") }
                dst[k] = v
            }
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map { $0.intValue.map(String.init) ?? snake($0.stringValue) }.joined(separator: ".")
        }
        switch e {
        case .typeMismatch(let t, let c): return "\"\(path(c))\": expected \(t)"
        case .valueNotFound(let t, let c): return "\"\(path(c))\": missing value of type \(t)"
        case .keyNotFound(let k, let c): return "\"\(path(c))\": missing key \(snake(k.stringValue))"
        case .dataCorrupted(let c): return "\"\(path(c))\": \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    static func snake(_ s: String) -> String {
        var out = ""
        for ch in s { if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) } }
        return out
    }

    /// The config as YAML-compatible JSON text (snake_case keys), for checkpoint metadata and logs.
    public static func json<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.sortedKeys]
        return (try? String(data: enc.encode(value), encoding: .utf8)) ?? "{}"
    }
}
