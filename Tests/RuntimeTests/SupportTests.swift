import XCTest
@testable import Kernels

/// The cancellation flag and progress reporter that kernels share with the REPL.
final class SupportTests: XCTestCase {
    func testCancellationCheckThrowsOnlyWhenRequested() throws {
        Cancellation.reset()
        XCTAssertNoThrow(try Cancellation.check())
        Cancellation.request()
        XCTAssertTrue(Cancellation.isRequested)
        XCTAssertThrowsError(try Cancellation.check()) { XCTAssertTrue($0 is InterruptedError) }
        Cancellation.reset()
        XCTAssertFalse(Cancellation.isRequested)
    }

    func testProgressLine() {
        let p = Progress(label: "synflow", total: 100, unit: "rounds")
        XCTAssertEqual(p.render(done: 100, elapsed: 1.94, final: true),
                       "synflow  100/100 rounds  [████████████████████] 1.9 s")
        XCTAssertEqual(p.render(done: 25, elapsed: 2, final: false),
                       "synflow  25/100 rounds  [█████···············] 12.5/s  ETA 6.0 s")
        XCTAssertEqual(Progress.seconds(125), "2m05s")
        p.finish()
    }
}
