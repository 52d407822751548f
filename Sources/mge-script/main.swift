import Foundation
import Runtime

exit(ScriptRunner.main(Array(CommandLine.arguments.dropFirst())))
