public import ArgumentParser
public import BackchannelAgent
public import BackchannelPower
public import BackchannelProtocol
public import BackchannelSQLite
public import Logging

extension SQLiteMessageStore.Configuration.Durability: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension UplinkKind: ExpressibleByArgument {}
extension WireEncoding: ExpressibleByArgument {}
extension ExportFormat: ExpressibleByArgument {}
extension InferredPresence: ExpressibleByArgument {}
extension DeliveryMode: ExpressibleByArgument {}
extension AgentChannel: ExpressibleByArgument {}
extension IntervalTimestamp: ExpressibleByArgument {}
