import Foundation

/// A comma-separated list of sizes as people type them on a command line ("224,256, 384"): each an integer
/// in `range`, at least one. Throws a `RecipeError` saying which item is wrong.
public func parseSizeList(_ text: String, range: ClosedRange<Int>) throws -> [Int] {
    var sizes: [Int] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: false).map({
        $0.trimmingCharacters(in: .whitespaces)
    }) {
        guard let v = Int(part), range.contains(v) else {
            throw RecipeError("\"\(part)\" is not a size from \(range.lowerBound) to \(range.upperBound)")
        }
        sizes.append(v)
    }
    return sizes
}
