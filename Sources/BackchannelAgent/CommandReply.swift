public import BackchannelProtocol

/// What a command handler returns: the outcome the device reports.
public struct CommandReply: Sendable, Hashable {
    /// How the command ended.
    public var status: ResultStatus
    /// A machine-readable code.
    public var code: String?
    /// Whether retrying could succeed.
    public var retryable: Bool?
    /// A human-readable explanation.
    public var detail: String?
    /// The output.
    public var data: JSONValue?

    /// Creates a reply.
    public init(
        status: ResultStatus, code: String? = nil, retryable: Bool? = nil, detail: String? = nil, data: JSONValue? = nil
    ) {
        self.status = status
        self.code = code
        self.retryable = retryable
        self.detail = detail
        self.data = data
    }

    /// The command did what it was asked.
    public static func succeeded(_ data: JSONValue? = nil) -> CommandReply {
        CommandReply(status: .succeeded, data: data)
    }

    /// The command ran and failed.
    public static func failed(
        code: String, detail: String, retryable: Bool = false, data: JSONValue? = nil
    ) -> CommandReply {
        CommandReply(status: .failed, code: code, retryable: retryable, detail: detail, data: data)
    }

    /// The device refused the command without running it.
    public static func rejected(code: String, detail: String) -> CommandReply {
        CommandReply(status: .rejected, code: code, retryable: false, detail: detail)
    }
}

/// Runs one command. Thrown errors become a FAILED result with code `handler_error`.
public typealias CommandHandler = @Sendable (LogicalRequest) async throws -> CommandReply

/// A handler's way to refuse a command because of its arguments.
public struct InvalidArguments: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var description: String

    /// Creates the error.
    public init(_ description: String) {
        self.description = description
    }
}
