import BackchannelPower
import BackchannelProtocol
import Foundation
import Testing

/// M (master)
/// ├─ B1 (branch)
/// │  ├─ L1 (load, default 1 customer)
/// │  └─ G1 (generator, default 0)
/// ├─ B2 (branch)
/// │  └─ L2 (load, 5 customers)
/// │     └─ MT1 (meter, default 1)
/// └─ L3 (load, default 1), directly under the master
private func sampleTree() throws -> FeederTree {
    try FeederTree(nodes: [
        FeederNode(id: "M", role: .master),
        FeederNode(id: "B1", parent: "M", role: .branch),
        FeederNode(id: "B2", parent: "M", role: .branch),
        FeederNode(id: "L1", parent: "B1", role: .load),
        FeederNode(id: "G1", parent: "B1", role: .generator),
        FeederNode(id: "L2", parent: "B2", role: .load, customers: 5),
        FeederNode(id: "MT1", parent: "L2", role: .meter),
        FeederNode(id: "L3", parent: "M", role: .load),
    ])
}

private func time(_ text: String) throws -> Timestamp {
    try #require(Timestamp(rfc3339: text))
}

@Suite("Feeder topology")
struct TopologyTests {
    @Test("queries: children, breadth-first downstream, upstream nearest first, depth, branch")
    func queries() throws {
        let tree = try sampleTree()
        #expect(tree.roots == ["M"])
        #expect(try tree.children(of: "M") == ["B1", "B2", "L3"])
        // Breadth-first: M's children in input order, then B1's, then B2's, then L2's.
        #expect(try tree.downstream(of: "M") == ["B1", "B2", "L3", "L1", "G1", "L2", "MT1"])
        #expect(try tree.downstream(of: "MT1") == [])
        #expect(try tree.upstream(of: "MT1") == ["L2", "B2", "M"])
        #expect(try tree.upstream(of: "M") == [])
        #expect(try tree.depth(of: "M") == 0)
        #expect(try tree.depth(of: "MT1") == 3)
        #expect(try tree.branch(of: "MT1") == "B2")
        #expect(try tree.branch(of: "B1") == "B1")
        #expect(try tree.branch(of: "L3") == nil)
        #expect(try tree.feeder(of: "G1") == "M")
        #expect(tree.branches == ["B1", "B2"])
    }

    @Test("customers: 1 by default for loads and meters, 0 for the rest, explicit counts win")
    func customers() throws {
        let tree = try sampleTree()
        // B1: L1 1 + G1 0 + B1 0 = 1. B2: L2 5 + MT1 1 = 6. M: 1 + 6 + L3 1 = 8.
        #expect(try tree.customers(under: "B1") == 1)
        #expect(try tree.customers(under: "B2") == 6)
        #expect(try tree.customers(under: "M") == 8)
        #expect(tree.totalCustomers == 8)
    }

    @Test("several roots make several feeders")
    func severalFeeders() throws {
        let tree = try FeederTree(nodes: [
            FeederNode(id: "A", role: .master), FeederNode(id: "B", role: .master),
            FeederNode(id: "a1", parent: "A", role: .load),
        ])
        #expect(tree.roots == ["A", "B"])
        #expect(try tree.feeder(of: "a1") == "A")
    }

    @Test("validation names the ids")
    func validation() {
        #expect(
            message {
                _ = try FeederTree(nodes: [
                    FeederNode(id: "A", role: .master), FeederNode(id: "A", role: .load),
                ])
            }
                == "duplicate node ids: A")
        #expect(
            message { _ = try FeederTree(nodes: [FeederNode(id: "A", parent: "Z", role: .load)]) }
                == "node A: parent Z is not in the tree")
        #expect(
            message { _ = try FeederTree(nodes: [FeederNode(id: "A", parent: "A", role: .load)]) }
                == "node A is its own parent")
        // X's parent is Z, Z's is Y, Y's is X: a loop no root reaches.
        let cycle = message {
            _ = try FeederTree(nodes: [
                FeederNode(id: "R", role: .master),
                FeederNode(id: "X", parent: "Z", role: .branch),
                FeederNode(id: "Y", parent: "X", role: .branch),
                FeederNode(id: "Z", parent: "Y", role: .branch),
            ])
        }
        #expect(cycle == "parent links form a cycle through: X → Z → Y → X")
        #expect(
            message { _ = try FeederTree(nodes: [FeederNode(id: "A", role: .load, customers: -1)]) }
                == "node A: customers -1 is negative")
        #expect(
            message { _ = try FeederTree(nodes: [FeederNode(id: " ", role: .load)]) }
                == "node 1: id is empty")
        #expect(
            message { _ = try sampleTree().downstream(of: "nope") }
                == "device nope is not in the feeder tree")
    }

    @Test("JSON and CSV input")
    func parsing() throws {
        let json = Data(
            #"{"nodes": [{"id": "M", "role": "master"}, {"id": "L", "parent": "M", "role": "load", "customers": 3, "name": "Shop"}]}"#
                .utf8)
        let tree = try FeederTree(json: json)
        #expect(try tree.customers(under: "M") == 3)
        #expect(tree.node("L")?.name == "Shop")
        let array = try FeederTree(json: Data(#"[{"id": "M", "role": "master"}]"#.utf8))
        #expect(array.roots == ["M"])
        #expect(
            message { _ = try FeederTree(json: Data(#"[{"id": "M"}]"#.utf8)) }
                == "feeder tree: [0].role is missing")

        let csv = "id,parent,role,customers,name\nM,,master,,Head\nL,M,load,,\nK,M,meter,4,\n"
        let fromCSV = try FeederTree(csv: csv)
        // L defaults to 1, K says 4: 5 under M.
        #expect(try fromCSV.customers(under: "M") == 5)
        #expect(fromCSV.node("M")?.name == "Head")
        #expect(
            message { _ = try FeederTree(csv: "id,parent,role\nM,,boss\n") }
                == "line 2, role: \"boss\" is not one of master, branch, load, generator, meter")
        #expect(
            message { _ = try FeederTree(csv: "id,parent,role,customers\nM,,master,two\n") }
                == "line 2, customers: \"two\" is not a whole number")
    }

    @Test("JSON round trip keeps the nodes")
    func roundTrip() throws {
        let tree = try sampleTree()
        let decoded = try JSONDecoder().decode(FeederTree.self, from: JSONEncoder().encode(tree))
        #expect(decoded == tree)
    }

    @Test("alert plan: generators disconnect, the rest alert, upstream is told it is contained")
    func alertPlan() throws {
        let plan = try sampleTree().alertPlan(event: "voltage-sag", at: "B1")
        #expect(plan.origin == "B1")
        #expect(
            plan.entries == [
                AlertPlanEntry(
                    device: "L1", command: "pq.alert",
                    args: ["origin": "B1", "event": "voltage-sag", "action": "pq-alert"]),
                AlertPlanEntry(
                    device: "G1", command: "pq.alert",
                    args: ["origin": "B1", "event": "voltage-sag", "action": "disconnect-generator"]),
                AlertPlanEntry(
                    device: "M", command: "pq.containment",
                    args: ["origin": "B1", "event": "voltage-sag", "handledBy": "B1"]),
            ])
        // At a leaf: no alerts, containment to L2, B2, M in that order.
        let leaf = try sampleTree().alertPlan(event: "swell", at: "MT1")
        #expect(leaf.entries.map(\.device) == ["L2", "B2", "M"])
        #expect(leaf.entries.allSatisfy { $0.command == AlertPlan.containmentCommand })
        #expect(
            message { _ = try sampleTree().alertPlan(event: "", at: "M") } == "alert plan: event is empty"
        )
    }

    @Test("roll-up sums reported kW, lists missing values and unavailable devices")
    func rollups() throws {
        let tree = try sampleTree()
        // B2's subtree: B2 (branch, no kW), L2 and MT1. L2 reports 4.5 kW, MT1 reports nothing.
        let b2 = try tree.rollup(of: "B2", kW: ["L2": 4.5, "B2": 99], available: ["B2", "L2"])
        #expect(b2.kW == 4.5)
        #expect(b2.kWReported == 1)
        #expect(b2.kWMissing == ["MT1"])
        #expect(b2.devices == 3)
        #expect(b2.available == 2)
        #expect(b2.unavailable == ["MT1"])
        // Whole feeder: L1 2 + G1 −3 (generation, summed as given) + L2 4.5 + L3 1.25 = 4.75 kW;
        // MT1 missing. Available: 7 of 8 (all but G1).
        let all = try tree.rollups(
            kW: ["L1": 2, "G1": -3, "L2": 4.5, "L3": 1.25],
            available: ["M", "B1", "B2", "L1", "L2", "MT1", "L3"])
        #expect(all.map(\.node) == ["M", "B1", "B2"])
        #expect(all[0].kW == 4.75)
        #expect(all[0].kWMissing == ["MT1"])
        #expect(all[0].available == 7)
        #expect(all[0].unavailable == ["G1"])
        // B1: L1 2 + G1 −3 = −1 kW.
        #expect(all[1].kW == -1)
        #expect(
            message { _ = try tree.rollup(of: "M", kW: ["ghost": 1], available: []) }
                == "roll-up: devices not in the feeder tree: ghost")
        #expect(
            message { _ = try tree.rollup(of: "M", kW: ["L1": .nan], available: []) }
                == "roll-up: kW of L1 is not finite")
    }

    @Test("propagation: latency per device, max, median, who has not answered")
    func propagation() throws {
        let tree = try sampleTree()
        let event = try time("2026-03-01T12:00:00Z")
        // Downstream of M: B1, B2, L3, L1, G1, L2, MT1. Answers: B1 +1.5 s, L1 +4 s, G1 +2 s,
        // L2 +10 s; X is not in the subtree.
        let report = try tree.propagation(
            from: "M", eventAt: event,
            answers: [
                "B1": event.adding(seconds: 1.5), "L1": event.adding(seconds: 4),
                "G1": event.adding(seconds: 2),
                "L2": event.adding(seconds: 10), "X": event,
            ])
        #expect(report.answered.map(\.device) == ["B1", "L1", "G1", "L2"])
        #expect(report.answered.map(\.seconds) == [1.5, 4, 2, 10])
        #expect(report.pending == ["B2", "L3", "MT1"])
        #expect(report.unexpected == ["X"])
        // Sorted: 1.5, 2, 4, 10 → max 10, median (2 + 4) / 2 = 3.
        #expect(report.maxSeconds == 10)
        #expect(report.medianSeconds == 3)
        let even = try tree.propagation(
            from: "B1", eventAt: event,
            answers: ["L1": event.adding(seconds: 4), "G1": event.adding(seconds: 2)])
        // B1's subtree is L1, G1, both answered: sorted 2, 4 → median (2 + 4) / 2 = 3, none pending.
        #expect(even.medianSeconds == 3)
        #expect(even.pending.isEmpty)
        // Odd count: sorted 1.5, 2, 4 → median 2.
        let three = try tree.propagation(
            from: "M", eventAt: event,
            answers: [
                "B1": event.adding(seconds: 1.5), "L1": event.adding(seconds: 4),
                "G1": event.adding(seconds: 2),
            ])
        #expect(three.medianSeconds == 2)
        let none = try tree.propagation(from: "B1", eventAt: event, answers: [:])
        #expect(none.maxSeconds == nil)
        #expect(none.medianSeconds == nil)
        #expect(none.pending == ["L1", "G1"])
        // An answer at the event time is 0 s; one millisecond before is an error.
        let same = try tree.propagation(from: "B1", eventAt: event, answers: ["L1": event])
        #expect(same.answered.first?.seconds == 0)
        #expect(
            message {
                _ = try tree.propagation(
                    from: "B1", eventAt: event,
                    answers: ["L1": Timestamp(milliseconds: event.milliseconds - 1)])
            }
                == "propagation: L1 answered at 2026-03-01T11:59:59.999Z, before the event at 2026-03-01T12:00:00.000Z"
        )
    }
}
