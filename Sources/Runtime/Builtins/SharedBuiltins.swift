import Foundation
import Kernels

/// Builtins that serve several kinds of native object.
let sharedBuiltins: [Builtin] = [
    Builtin("summary", [Param("x", .oneOf([.native("network"), .native("graph"), .native("layers")]))], returns: "table",
            summary: "A table describing a network (layers, shapes, kept weights) or a graph (partitions and edges).",
            example: "summary(resnet20())") { args in
        guard case .native(let object) = args["x"], let summarizable = object as? Summarizable else {
            throw args.bad("x", "network or graph expected, got \(args["x"].typeName)")
        }
        return try summarizable.summary()
    },
]
