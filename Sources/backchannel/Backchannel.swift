import ArgumentParser

/// The `backchannel` command: hub, simulator, operator client and tools in one executable.
@main
struct Backchannel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backchannel",
        abstract: "Firewall-friendly push communication for intelligent electronic devices.",
        discussion: """
            Devices behind firewalls connect out to a hub; the hub answers each poll with the \
            commands queued for that device. Start with `backchannel demo`, then in another \
            terminal try `backchannel devices` and `backchannel send meter-001 read --wait`.

            Client commands find the hub with --hub (or $BACKCHANNEL_HUB, default \
            http://127.0.0.1:8080) and the operator token with --token (or $BACKCHANNEL_TOKEN, \
            or the token a local hub saved in ~/.backchannel/credentials.json).
            """,
        subcommands: [
            HubCommand.self, DemoCommand.self, SimulateCommand.self, DevicesCommand.self, SendCommand.self,
            CommandsCommand.self, ReadingsCommand.self, WatchCommand.self, PresenceCommand.self, RendezvousCommand.self,
            ExportCommand.self, CampaignCommand.self, FirmwareCommand.self, AlarmsCommand.self,
            OperatorsCommand.self, AuditCommand.self, CertsCommand.self,
            KeysCommand.self, DecryptCommand.self, PowerCommand.self,
            BenchCommand.self,
        ]
    )
}
