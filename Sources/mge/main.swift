import Foundation
import Runtime

exit(REPL.main(Array(CommandLine.arguments.dropFirst())))
