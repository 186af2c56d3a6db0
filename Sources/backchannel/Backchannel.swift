import ArgumentParser
import AsyncHTTPClient
import Hummingbird

@main struct Backchannel: AsyncParsableCommand {
    func run() async throws {}
}
