import Foundation

/// A configuration value the detection building blocks cannot work with (anchor sizes, box-coder weights,
/// matcher thresholds, sampler sizes). The message names the parameter and the offending value.
///
/// Shape mismatches between tensors passed to the functions of this module are programming errors and
/// stop the program with a `precondition` message that names the function and the shapes, as in Engine.
public struct DetectionError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
