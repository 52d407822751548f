import XCTest
@testable import Runtime

final class BuiltinRegistryTests: XCTestCase {
    /// Areas are registered separately; a name defined twice would silently shadow the other.
    func testEveryBuiltinAndConstantNameIsDefinedOnce() {
        let names = BuiltinRegistry.areas.flatMap { $0.map(\.name) } + BuiltinRegistry.constantAreas.flatMap { $0.map(\.name) }
        let repeated = Dictionary(grouping: names, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        XCTAssertEqual(repeated, [], "defined more than once: \(repeated)")
        XCTAssertGreaterThan(names.count, 60)
    }

    /// help(name) needs a summary and an example for every builtin.
    func testEveryBuiltinHasSummaryAndExample() {
        for builtin in BuiltinRegistry.areas.joined() {
            XCTAssertFalse(builtin.summary.isEmpty, builtin.name)
            XCTAssertFalse(builtin.example.isEmpty, builtin.name)
        }
    }
}
