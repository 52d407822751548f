import Foundation
import Runtime

Startup.prepare()

exit(REPL.main(Array(CommandLine.arguments.dropFirst())))
