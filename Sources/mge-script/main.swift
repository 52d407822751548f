import Foundation
import Runtime

Startup.prepare()

exit(ScriptRunner.main(Array(CommandLine.arguments.dropFirst())))
