import Foundation

/// A recipe key with a fixed set of values (`roi.pooler: roialign`, `data.format: voc`): a `String` enum.
/// Decoding an unknown value fails with the allowed values in the message, which the recipe loader prefixes
/// with the key: `"roi.pooler": must be one of roipool, roialign; got "roipol"`.
public protocol ChoiceField: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension ChoiceField {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let raw = try c.decode(String.self)
        guard let v = Self(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "must be one of \(Self.allowedValues); got \"\(raw)\"")
        }
        self = v
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    /// The values, comma-separated, for messages.
    public static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
