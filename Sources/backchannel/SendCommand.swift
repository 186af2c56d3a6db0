import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import BackchannelSecurity
import Foundation

/// `backchannel send`: submit a command, optionally waiting for its result.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a command to a device; with --wait, print its result.",
        discussion: """
            Arguments are given as --arg key=value (numbers, true/false, null and JSON objects \
            or arrays are recognised; anything else is a string) or all at once with --args. \
            Examples:
              backchannel send meter-001 read --wait
              backchannel send meter-001 relay --arg state=open --wait
              backchannel send meter-001 set-interval --arg seconds=60 --ttl 600
              backchannel send meter-001 billing.reset --sign-key utility.key --wait
            With --sign-key the command is signed end to end (Ed25519): the device checks the \
            signature against its trust policy, so the hub cannot alter or replay it. A signed \
            command gets a client-chosen id (--id, or a new one) and an absolute expiry (now + \
            --ttl, default a day).
            Exit status: 0 when the command succeeded (or was accepted without --wait), 2 when it \
            ended otherwise, 3 when --wait ran out before it ended.
            """
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "Device id.") var device: String
    @Argument(help: "Command name, such as read, ping, relay, set-interval, set-time.") var command: String

    @Option(name: .customLong("arg"), help: "An argument as key=value; repeatable.")
    var arguments: [String] = []

    @Option(name: .customLong("args"), help: "All arguments as one JSON object.")
    var argsJSON: String?

    @Option(help: "Seconds until the command expires if the device has not acknowledged it.")
    var ttl: Double?

    @Option(help: "Do not start before this RFC 3339 time (hub clock).")
    var notBefore: String?

    @Option(help: "Resubmitting with the same key returns the original command.")
    var idempotencyKey: String?

    @Option(
        help:
            "queued (store and forward, default), instant (now or refused: needs a connected device) or whenAvailable (held until the device is available, else EXPIRED)."
    )
    var delivery: DeliveryMode = .queued

    @Option(help: "Seconds the device has to report a result after acknowledging.")
    var timeout: Double?

    @Option(help: "Sign the command with this Ed25519 key file (from `keys generate`).")
    var signKey: String?

    @Option(help: "The command id (a UUID); default: the hub assigns one, or a new one when signing.")
    var id: String?

    @Flag(help: "Wait for the command to end and print its result.")
    var wait = false

    @Option(help: "Longest wait with --wait, in seconds.")
    var waitTimeout: Double = 60

    func validate() throws {
        if argsJSON != nil && !arguments.isEmpty { throw ValidationError("use --arg or --args, not both") }
        if let notBefore, Timestamp(rfc3339: notBefore) == nil {
            throw ValidationError("--not-before must be an RFC 3339 time")
        }
        guard waitTimeout > 0 else { throw ValidationError("--wait-timeout must be positive") }
    }

    func run() async throws {
        let args = try parseArguments()
        var request = SubmitCommandRequest(
            name: command, args: args, ttl: ttl, notBefore: notBefore.flatMap(Timestamp.init(rfc3339:)),
            idempotencyKey: idempotencyKey, timeout: timeout, delivery: delivery == .queued ? nil : delivery
        )
        request.id = id
        if let signKey {
            let key: SigningKey
            do { key = try KeyFile.read(URL(fileURLWithPath: signKey)).signingKey() } catch {
                throw CLIError("\(error)")
            }
            CommandSigner(key: key).sign(&request, for: device)
        }
        let final = try await withClient(client) { api -> CommandView in
            var view = try await api.submit(request, to: device)
            if !client.json { print("\(view.id) \(view.state)") }
            guard wait else { return view }
            let deadline = Date().addingTimeInterval(waitTimeout)
            while !view.state.isTerminal, Date() < deadline {
                view = try await api.command(view.id, wait: min(30, max(1, deadline.timeIntervalSinceNow)))
            }
            return view
        }
        if client.json {
            try printJSON(final)
        } else if wait {
            printResult(final)
        }
        if wait {
            if !final.state.isTerminal { throw ExitCode(3) }
            if final.state != .succeeded { throw ExitCode(2) }
        }
    }

    private func printResult(_ view: CommandView) {
        print("\(view.id) \(view.state)" + (view.state.isTerminal ? "" : " (still waiting after \(Int(waitTimeout))s)"))
        if let outcome = view.outcome {
            if let code = outcome.code { print("code: \(code)") }
            if let detail = outcome.detail { print("detail: \(detail)") }
            if case .object(let values)? = outcome.data {
                printTable(["KEY", "VALUE"], values.sorted { $0.key < $1.key }.map { [$0.key, render($0.value)] })
            } else if let data = outcome.data {
                print(compact(data))
            }
        }
    }

    private func render(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return compact(value)
    }

    private func parseArguments() throws -> JSONValue {
        if let argsJSON {
            guard let value = try? WireJSON.decode(JSONValue.self, from: Data(argsJSON.utf8)), case .object = value
            else {
                throw ValidationError("--args must be a JSON object")
            }
            return value
        }
        var object: [String: JSONValue] = [:]
        for argument in arguments {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("--arg must be key=value, got '\(argument)'")
            }
            object[parts[0]] = Self.value(parts[1])
        }
        return .object(object)
    }

    /// Interprets a `--arg` value: JSON scalars, objects and arrays; otherwise a string.
    static func value(_ text: String) -> JSONValue {
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if text == "null" { return .null }
        if let number = Double(text), number.isFinite { return .number(number) }
        if text.hasPrefix("{") || text.hasPrefix("["),
            let value = try? WireJSON.decode(JSONValue.self, from: Data(text.utf8))
        {
            return value
        }
        return .string(text)
    }
}
