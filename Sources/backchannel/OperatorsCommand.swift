import ArgumentParser
import BackchannelClient
import BackchannelProtocol
import Foundation

/// `backchannel operators`: operator accounts of the caller's tenant.
struct OperatorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operators",
        abstract: "Manage operator accounts: who may do what, in which tenant.",
        discussion: """
            Every operator has a role and a tenant, and sees only that tenant's devices and \
            records. Roles: admin (everything in the tenant, operators included), operator \
            (commands, campaigns, firmware), billing (devices and metering data), viewer \
            (read-only operational state). Only an admin may manage operators; only an admin of \
            the hub's system tenant (the bootstrap token's) may create them in another tenant.

            A token is printed once, when it is created or rotated; the hub keeps only a salted \
            hash.

            Example: backchannel operators add alice --role billing --tenant acme
            """,
        subcommands: [List.self, Add.self, Rotate.self, Remove.self, WhoAmI.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the operators of your tenant.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let operators = try await withClient(client) { try await $0.operators() }
            if client.json { return try printJSON(operators) }
            printTable(
                ["OPERATOR", "ROLE", "TENANT", "CREATED"],
                operators.map { [$0.name, $0.role.rawValue, $0.tenant, $0.createdAt.description] })
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an operator and print its token once.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The operator's name (A-Z a-z 0-9 . _ : -, up to 64).") var name: String
        @Option(help: "admin, operator, billing or viewer.") var role: String
        @Option(help: "The tenant (default: yours).") var tenant: String?

        func validate() throws {
            guard OperatorRole(rawValue: role) != nil else {
                throw ValidationError(
                    "--role must be one of \(OperatorRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard Identifier.isValid(name, maxBytes: 64) else {
                throw ValidationError("the name must be 1-64 characters of A-Z a-z 0-9 . _ : -")
            }
        }

        func run() async throws {
            let request = CreateOperatorRequest(name: name, role: OperatorRole(rawValue: role)!, tenant: tenant)
            let created = try await withClient(client) { try await $0.createOperator(request) }
            if client.json { return try printJSON(created) }
            print(
                "operator \(created.operator.name) (\(created.operator.role.rawValue), tenant \(created.operator.tenant))"
            )
            print("token: \(created.token)")
            print("The token is shown only now; store it safely.")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace an operator's token and print the new one.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The operator's name.") var name: String

        func run() async throws {
            let rotated = try await withClient(client) { try await $0.rotateOperatorToken(name) }
            if client.json { return try printJSON(rotated) }
            print("token: \(rotated.token)")
            print("The old token no longer works.")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an operator; its token stops working.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The operator's name.") var name: String

        func run() async throws {
            try await withClient(client) { try await $0.deleteOperator(name) }
            print("operator \(name) removed")
        }
    }

    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami", abstract: "Show the operator, role and tenant behind your token.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let me = try await withClient(client) { try await $0.whoami() }
            if client.json { return try printJSON(me) }
            print("\(me.name) (\(me.role.rawValue), tenant \(me.tenant))")
        }
    }
}

/// `backchannel audit`: the tenant's append-only audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log: operator actions and security rejections, newest first.",
        discussion: """
            Every operator request that changes something, every read of metering data, and \
            every refusal (bad token, role, another tenant's record, rate limit) is recorded. \
            Admins only.
            """
    )
    @OptionGroup var client: ClientOptions
    @Option(help: "Entries to show (1-1000).") var limit: Int = 50

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1-1000") }
    }

    func run() async throws {
        let page = try await withClient(client) { try await $0.audit(limit: limit) }
        if client.json { return try printJSON(page.items) }
        printTable(
            ["SEQ", "AT", "ACTOR", "ACTION", "OUTCOME", "STATUS", "REMOTE"],
            page.items.map {
                [
                    String($0.seq), $0.at.description, $0.actor, $0.action, $0.outcome,
                    $0.status.map(String.init) ?? "", $0.remote ?? "",
                ]
            })
    }
}
