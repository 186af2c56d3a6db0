import ArgumentParser

/// `backchannel bench`: measured in a release build.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark a hub with simulated devices (build with -c release)."
    )

    func run() async throws {
        throw CLIError("not implemented yet")
    }
}
