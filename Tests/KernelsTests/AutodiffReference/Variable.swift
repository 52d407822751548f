import Foundation
@testable import Kernels

/// The test suite's reference: reverse-mode automatic differentiation that can differentiate
/// its own backward pass. The library's gradient engine is `FirstOrderPass`; this tape, written
/// independently of it, checks it (with finite differences, which check the tape).
///
/// Every differentiable operation records a node holding its inputs and a backward rule. The
/// backward rules are written with the same differentiable operations (conv's input-gradient is
/// itself a recorded op whose backward uses conv and conv's weight-gradient, and so on), so with
/// `createGraph: true` the gradients come out as recorded Variables that can be differentiated
/// again: Hessian-vector products and gradients through unrolled SGD steps are exact.
/// With `createGraph: false` the rules receive detached inputs, record nothing and may use fused
/// kernels (batch norm), which keeps first-order work (training, SNIP) as fast as a plain backward.

/// A backward rule: given the gradient of the output, the inputs (detached unless a graph is
/// being created) and which inputs need a gradient, returns one gradient (or nil) per input.
typealias BackwardRule<S: NNScalar> = (_ gradient: Variable<S>, _ inputs: [Variable<S>], _ needs: [Bool],
                                       _ createGraph: Bool) throws -> [Variable<S>?]

final class Node<S: NNScalar> {
    let name: String
    let inputs: [Variable<S>]
    let backward: BackwardRule<S>
    init(name: String, inputs: [Variable<S>], backward: @escaping BackwardRule<S>) {
        self.name = name; self.inputs = inputs; self.backward = backward
    }
}

/// A dense row-major array that remembers how it was computed.
///
/// `Variable<Double>` runs the same code as `Variable<Float>` for finite-difference checks. Values are immutable once created (gradients are new Variables).
final class Variable<Scalar: NNScalar> {
    let shape: [Int]
    let values: [Scalar]
    /// True for leaves created with `requiresGrad` and for results of operations on such Variables.
    let requiresGrad: Bool
    let node: Node<Scalar>?

    /// A leaf. Throws when `values.count` does not match `shape`.
    init(shape: [Int], values: [Scalar], requiresGrad: Bool = false) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw NNError.shapeMismatch(operation: "Variable", detail: "shape \(Tensor.describe(shape)) does not hold \(values.count) values")
        }
        self.shape = shape; self.values = values; self.requiresGrad = requiresGrad; self.node = nil
    }

    /// Internal constructor: the caller guarantees `values.count == shape product`.
    init(uncheckedShape shape: [Int], values: [Scalar], node: Node<Scalar>?) {
        self.shape = shape; self.values = values; self.requiresGrad = node != nil; self.node = node
    }

    /// A constant (no gradient) sharing this Variable's values.
    var detached: Variable<Scalar> { Variable(uncheckedShape: shape, values: values, node: nil) }

    /// The same values as a leaf that requires a gradient (cuts any history).
    func leaf(requiresGrad: Bool = true) -> Variable<Scalar> {
        let v = Variable(uncheckedShape: shape, values: values, node: nil, requiresGrad: requiresGrad)
        return v
    }

    private init(uncheckedShape shape: [Int], values: [Scalar], node: Node<Scalar>?, requiresGrad: Bool) {
        self.shape = shape; self.values = values; self.requiresGrad = requiresGrad; self.node = node
    }

    var count: Int { values.count }

    /// A constant filled with `value`.
    static func constant(_ value: Scalar, shape: [Int]) -> Variable<Scalar> {
        Variable(uncheckedShape: shape, values: [Scalar](repeating: value, count: shape.reduce(1, *)), node: nil)
    }

    /// The single value of a one-element Variable (a loss).
    var scalar: Scalar? { values.count == 1 ? values[0] : nil }

    /// Records the result of an operation: a node only when some input requires a gradient.
    static func result(_ name: String, shape: [Int], values: [Scalar], inputs: [Variable<Scalar>],
                       backward: @escaping BackwardRule<Scalar>) -> Variable<Scalar> {
        if inputs.contains(where: \.requiresGrad) {
            return Variable(uncheckedShape: shape, values: values, node: Node(name: name, inputs: inputs, backward: backward))
        }
        return Variable(uncheckedShape: shape, values: values, node: nil)
    }
}

extension Variable where Scalar == Float {
    /// A leaf holding a tensor's values (no copy: arrays are copy-on-write).
    convenience init(_ tensor: Tensor, requiresGrad: Bool = false) {
        self.init(uncheckedShape: tensor.shape, values: tensor.data, node: nil, requiresGrad: requiresGrad)
    }

    var tensor: Tensor { Tensor(shape: shape, data: values) }
}

extension Variable {
    /// Converts a Float tensor (used to run a network's parameters in Double for checks).
    convenience init(converting tensor: Tensor, requiresGrad: Bool = false) {
        self.init(uncheckedShape: tensor.shape, values: tensor.data.map { Scalar(Double($0)) }, node: nil,
                  requiresGrad: requiresGrad)
    }
}

/// Gradients by reverse accumulation over the recorded graph.
extension Autodiff {
    /// ∂output/∂wrt for every Variable of `wrt`, seeded with `seed` (default: ones, so a scalar
    /// loss gives its gradient). Variables the output does not depend on get zeros.
    ///
    /// With `createGraph: true` the returned gradients are themselves recorded and can be
    /// differentiated again (double backward); otherwise they are constants and the pass uses
    /// fused kernels. The graph is not consumed: `grad` may be called on it any number of times.
    /// - Complexity: one backward rule per recorded node reachable from `output`.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func grad<S: NNScalar>(of output: Variable<S>, wrt: [Variable<S>], seed: Variable<S>? = nil,
                                         createGraph: Bool = false) throws -> [Variable<S>] {
        if let seed, seed.shape != output.shape {
            throw NNError.shapeMismatch(operation: "grad", detail: "seed \(Tensor.describe(seed.shape)) for output \(Tensor.describe(output.shape))")
        }
        let order = topologicalOrder(output)
        let wanted = Set(wrt.map(ObjectIdentifier.init))
        var gradients: [ObjectIdentifier: Variable<S>] = [:]
        gradients[ObjectIdentifier(output)] = seed.map { createGraph ? $0 : $0.detached }
            ?? Variable.constant(1, shape: output.shape)
        var results: [ObjectIdentifier: Variable<S>] = [:]

        for v in order.reversed() {
            let id = ObjectIdentifier(v)
            guard let g = gradients.removeValue(forKey: id) else { continue }
            if wanted.contains(id) { results[id] = g }
            guard let node = v.node else { continue }
            let inputs = createGraph ? node.inputs : node.inputs.map(\.detached)
            let needs = node.inputs.map(\.requiresGrad)
            let inputGradients = try node.backward(g, inputs, needs, createGraph)
            for (input, ig) in zip(node.inputs, inputGradients) {
                guard input.requiresGrad, let ig else { continue }
                let key = ObjectIdentifier(input)
                if let existing = gradients[key] {
                    gradients[key] = try createGraph ? add(existing, ig) : accumulate(existing, ig)
                } else {
                    gradients[key] = createGraph ? ig : ig.detached
                }
            }
        }
        // A wanted Variable that is a leaf or the output itself is recorded above; the rest are unreachable.
        return wrt.map { w in results[ObjectIdentifier(w)] ?? Variable.constant(0, shape: w.shape) }
    }

    /// Hessian-vector products H·v of a scalar function, exactly, by double backward:
    /// Hv = ∂⟨∂f/∂x, v⟩/∂x. `output` must have been computed from `wrt` with recording on.
    /// Returns the gradient as well (it is computed on the way).
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func hessianVectorProduct<S: NNScalar>(of output: Variable<S>, wrt: [Variable<S>],
                                                         vector: [Variable<S>], createGraph: Bool = false)
        throws -> (gradient: [Variable<S>], hessianVector: [Variable<S>]) {
        guard vector.count == wrt.count else {
            throw NNError.invalidArgument(operation: "hessianVectorProduct", detail: "\(vector.count) vectors for \(wrt.count) variables")
        }
        let gradient = try grad(of: output, wrt: wrt, createGraph: true)
        var inner: Variable<S>?
        for (g, v) in zip(gradient, vector) {
            let term = try dot(g, v.detached)
            inner = try inner.map { try add($0, term) } ?? term
        }
        guard let inner else { return ([], []) }
        let hv = try grad(of: inner, wrt: wrt, createGraph: createGraph)
        return (gradient.map { createGraph ? $0 : $0.detached }, hv)
    }

    /// Variables reachable from `root` through recorded nodes, inputs before users.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func topologicalOrder<S: NNScalar>(_ root: Variable<S>) -> [Variable<S>] {
        var order: [Variable<S>] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative post-order DFS: graphs of unrolled training steps are deep.
        var stack: [(Variable<S>, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (v, next) = stack.popLast() {
            let inputs = v.node?.inputs ?? []
            if next < inputs.count {
                stack.append((v, next + 1))
                let child = inputs[next]
                if child.requiresGrad, visited.insert(ObjectIdentifier(child)).inserted { stack.append((child, 0)) }
            } else {
                order.append(v)
            }
        }
        return order
    }

    /// Sum of two constant gradients without recording.
    @_specialize(where S == Float)
    @_specialize(where S == Double)
    static func accumulate<S: NNScalar>(_ a: Variable<S>, _ b: Variable<S>) throws -> Variable<S> {
        guard a.shape == b.shape else {
            throw NNError.shapeMismatch(operation: "grad", detail: "gradients \(Tensor.describe(a.shape)) and \(Tensor.describe(b.shape))")
        }
        // One pass into a fresh buffer, split over cores (not a copy of a, then a += pass).
        return Variable(uncheckedShape: a.shape, values: map2(a, b, +), node: nil)
    }
}
