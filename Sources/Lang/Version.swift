/// The language version shown by the REPL banner.
public let mgeVersion = "0.1"
