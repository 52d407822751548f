import XCTest
@testable import Runtime
final class RuntimeSmokeTests: XCTestCase { func testLinks() { XCTAssertTrue(true) } }
