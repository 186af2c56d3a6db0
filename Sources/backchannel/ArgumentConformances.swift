public import ArgumentParser
public import BackchannelProtocol
public import BackchannelSQLite
public import Logging

extension SQLiteMessageStore.Configuration.Durability: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension UplinkKind: ExpressibleByArgument {}
