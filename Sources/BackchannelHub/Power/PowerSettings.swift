/// Settings of the power-management applications.
public struct PowerSettings: Sendable, Hashable {
    /// The IANA time zone of the service territory: the Green Button export's local time
    /// parameters. Tariffs and shedding schedules carry their own time zone.
    public var timeZone: String = "UTC"
    /// Days of interval data kept; older intervals are pruned. 0 keeps everything.
    public var intervalRetentionDays: Double = 400
    /// Seconds between re-evaluations of the shedding policies without a price change (a
    /// limit window starting or ending can shed or restore by itself).
    public var sheddingCheckInterval: Double = 30
    /// Seconds a topology alert or containment notice stays deliverable.
    public var alertTTL: Double = 600
    /// Tamper: largest change of a device's clock offset between two samples, seconds.
    public var clockJumpTolerance: Double = 120
    /// Tamper: two contacts from different addresses closer than this are one identity in two
    /// places, seconds.
    public var dualPresenceWindow: Double = 60

    /// Settings with the default values.
    public init() {}
}
