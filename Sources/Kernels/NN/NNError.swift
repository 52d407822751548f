/// Errors of the numeric layer that user data can cause.
public enum NNError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(operation: String, detail: String)
    case invalidArgument(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .invalidArgument(op, detail): return "\(op): \(detail)"
        }
    }
}
