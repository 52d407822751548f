import Foundation
import XCTest

/// scripts/test-slurm: a one-node SLURM cluster on this machine runs a sweep as a 3-task array
/// plus its merge job, and the merged file must equal a one-process run. Skipped (with the
/// script's reason) when not root or SLURM is not installed.
final class SlurmSweepTests: XCTestCase {
    func testThreeTaskArrayMergedEqualsOneProcess() throws {
        _ = try XCTUnwrap(TestPaths.product("mge-script"), "build mge-script first (swift build)")
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/test-slurm")
        let result = try runProcess(URL(fileURLWithPath: "/bin/bash"), [script.path], timeout: 400)
        if result.status == 77 { throw XCTSkip(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("test-slurm: ok"), result.stdout + result.stderr)
    }
}
