import Lang
import XCTest
@testable import Runtime

/// How the numerics plug in: a native object type and a builtin taking it with keyword defaults.
private final class ToyNetwork: NativeValue {
    var layers: [String: Int] = ["conv1": 432, "linear": 640]
    var typeName: String { "network" }
    func display(long: Bool) -> String { long ? "network with layers conv1 (432), linear (640)" : "network (2 layers)" }
    func field(_ name: String) -> Value? { name == "params" ? .int(layers.values.reduce(0, +)) : nil }
    var fieldNames: [String] { ["params"] }
}

private let toyBuiltins: [Builtin] = [
    Builtin("toy", [], returns: "network", summary: "A tiny network.", example: "net = toy()") { _ in .native(ToyNetwork()) },
    Builtin("prune", [Param("net", .native("network")), Param("pruner", .native("pruner")), Param("sparsity", .float),
                      Param("seed", .int, default: .int(0))],
            returns: "record", summary: "Prunes a network.", example: "prune(net, snip, 0.9, seed: 1)") { args in
        let net = try args.native("net", as: ToyNetwork.self)
        let sparsity = try args.double("sparsity")
        guard sparsity >= 0, sparsity < 1 else { throw args.bad("sparsity", "must be in [0, 1)") }
        return .record(Record([("params", .int(net.layers.values.reduce(0, +))), ("sparsity", .float(sparsity)),
                               ("seed", args["seed"])]))
    },
]

private final class ToyPruner: NativeValue {
    var typeName: String { "pruner" }
    func display(long: Bool) -> String { "pruner snip" }
}

final class NativeValueTests: XCTestCase {
    private func session() -> Session {
        let interpreter = Interpreter()
        for b in toyBuiltins { interpreter.defineBuiltin(b) }
        interpreter.defineConstant(Constant("snip", .native(ToyPruner()), summary: "SNIP pruning at initialisation."))
        return Session(interpreter)
    }

    func testNativeValuesDisplayAndExposeFields() {
        let s = session()
        XCTAssertEqual(s.output("net = toy()\nnet\nnet.params\nshow(net)\nprint(type(net), [net])"),
                       "network (2 layers)\n1072\nnetwork with layers conv1 (432), linear (640)\nnetwork [network (2 layers)]\n")
        XCTAssertEqual(s.output("prune(net, snip, 1, seed: 3)"), "", "sparsity 1 is refused by the body")
        XCTAssertEqual(s.output("prune(net, snip, 0, seed: 3)"), "field     value\nparams    1072\nsparsity  0.0\nseed      3\n")
    }

    func testArgumentCheckingMessages() {
        let s = session()
        s.run("net = toy()")
        let cases = [
            "prune(net, \"snip\", 0.9)": "bad argument #2 to 'prune' (pruner expected, got string)",
            "prune(net, snip, 0.9, seeed: 1)": "unknown keyword argument 'seeed' to 'prune' (did you mean 'seed'?)",
            "prune(net, snip)": "missing argument #3 'sparsity' to 'prune'",
            "prune(net, snip, 0.9, seed: 0.5)": "bad argument 'seed' to 'prune' (int expected, got float)",
            "prune(net, snip, 1.5)": "bad argument #3 to 'prune' (must be in [0, 1))",
            "net.parms": "network has no field 'parms' (did you mean 'params'?)",
            "snip = 3": "cannot assign to constant 'snip'",
        ]
        for (text, message) in cases {
            let before = s.err.count
            XCTAssertEqual(s.run(text), .runtimeError, text)
            let headline = String(s.err.dropFirst(before)).split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertTrue(headline.hasSuffix("error: " + message), "\(text): \(headline)")
        }
        XCTAssertEqual(s.output("?snip"), "snip: pruner (constant)\n  SNIP pruning at initialisation.\n")
        XCTAssertTrue(s.output("?prune").hasPrefix("prune(net, pruner, sparsity, seed: 0) -> record\n"))
    }

    func testCompletionOffersNamesAndFields() {
        let s = session()
        s.run("net = toy(); metrics = {spectral_gap: 1, spectral_radius: 2}")
        XCTAssertEqual(REPL.completions(for: "metrics.spec", in: s.interpreter), ["metrics.spectral_gap", "metrics.spectral_radius"])
        XCTAssertEqual(REPL.completions(for: "net.p", in: s.interpreter), ["net.params"])
        XCTAssertTrue(REPL.completions(for: "pri", in: s.interpreter).contains("print"))
        XCTAssertTrue(REPL.completions(for: "sn", in: s.interpreter).contains("snip"))
        XCTAssertEqual(REPL.completions(for: "whi", in: s.interpreter), ["while"])
    }
}
