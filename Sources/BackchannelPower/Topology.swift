import BackchannelProtocol
public import Foundation

/// What a device in a feeder tree is.
public enum FeederRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// The IED at the head of a feeder (a root).
    case master
    /// An IED on a branch of the feeder.
    case branch
    /// A load (one customer unless told otherwise).
    case load
    /// A generator (no customers unless told otherwise).
    case generator
    /// A meter (one customer unless told otherwise).
    case meter

    /// Customers a node of this role serves when its `customers` is not given:
    /// 1 for `load` and `meter`, 0 for `master`, `branch` and `generator`.
    public var defaultCustomers: Int {
        switch self {
        case .load, .meter: 1
        case .master, .branch, .generator: 0
        }
    }

    /// Whether a roll-up sums this role's kW: loads, generators and meters do; the master and
    /// branch IEDs do not, since their readings measure what flows to the devices below them.
    public var contributesKW: Bool {
        switch self {
        case .load, .generator, .meter: true
        case .master, .branch: false
        }
    }
}

/// One device in a feeder tree, as declared: its id, its parent and what it is.
///
/// JSON: `{"id": "b1", "parent": "m1", "role": "branch", "customers": 0, "name": "North"}`;
/// `parent`, `customers` and `name` may be omitted.
public struct FeederNode: Sendable, Hashable, Codable {
    /// The device id, unique in the tree.
    public var id: String
    /// The parent device id; nil for the head of a feeder.
    public var parent: String?
    /// What the device is.
    public var role: FeederRole
    /// Customers served at this node itself (not counting its children); nil means the role's
    /// ``FeederRole/defaultCustomers``.
    public var customers: Int?
    /// A human-readable name.
    public var name: String?

    /// Creates a node.
    public init(
        id: String, parent: String? = nil, role: FeederRole, customers: Int? = nil, name: String? = nil
    ) {
        self.id = id
        self.parent = parent
        self.role = role
        self.customers = customers
        self.name = name
    }

    /// Customers served at this node itself: `customers`, or the role's default when absent.
    public var customerCount: Int { customers ?? role.defaultCustomers }
}

/// Feeder trees built from devices that declare their parents: master IED → branch IEDs →
/// loads, generators and meters. Several roots make several feeders.
///
/// The roles do not constrain the shape (a meter may sit under a load); only the parent links
/// are checked. Encodes as the list of its nodes, in input order.
public struct FeederTree: Sendable, Hashable, Codable {
    /// The nodes, in input order.
    public let nodes: [FeederNode]
    /// The roots (heads of feeders), in input order.
    public let roots: [String]
    private let index: [String: Int]
    private let childIDs: [String: [String]]

    /// Builds and checks a tree: ids must be non-empty and unique, parents must exist and not
    /// be the node itself, parent links must not form a cycle, customers must be ≥ 0.
    public init(nodes: [FeederNode]) throws(PowerInputError) {
        var index: [String: Int] = [:]
        var duplicates: [String] = []
        for (position, node) in nodes.enumerated() {
            guard !node.id.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw PowerInputError("node \(position + 1): id is empty")
            }
            if index[node.id] != nil {
                if !duplicates.contains(node.id) { duplicates.append(node.id) }
            } else {
                index[node.id] = position
            }
            if let customers = node.customers, customers < 0 {
                throw PowerInputError("node \(node.id): customers \(customers) is negative")
            }
        }
        guard duplicates.isEmpty else {
            throw PowerInputError("duplicate node ids: \(duplicates.joined(separator: ", "))")
        }
        var childIDs: [String: [String]] = [:]
        var roots: [String] = []
        for node in nodes {
            guard let parent = node.parent else {
                roots.append(node.id)
                continue
            }
            guard parent != node.id else { throw PowerInputError("node \(node.id) is its own parent") }
            guard index[parent] != nil else {
                throw PowerInputError("node \(node.id): parent \(parent) is not in the tree")
            }
            childIDs[parent, default: []].append(node.id)
        }
        // Every node reachable from a root is in a tree; the rest sit on a cycle or below one.
        var reached = Set<String>()
        var queue = roots
        while let id = queue.popLast() {
            reached.insert(id)
            queue.append(contentsOf: childIDs[id] ?? [])
        }
        let unreached = nodes.map(\.id).filter { !reached.contains($0) }
        if !unreached.isEmpty {
            throw PowerInputError(
                "parent links form a cycle through: \(Self.cycle(from: unreached[0], nodes: nodes, index: index).joined(separator: " → "))"
            )
        }
        self.nodes = nodes
        self.roots = roots
        self.index = index
        self.childIDs = childIDs
    }

    /// The ids on the cycle reached by following parents from `start`.
    private static func cycle(from start: String, nodes: [FeederNode], index: [String: Int])
        -> [String]
    {
        var path: [String] = []
        var current = start
        while !path.contains(current), let position = index[current],
            let parent = nodes[position].parent
        {
            path.append(current)
            current = parent
        }
        guard let first = path.firstIndex(of: current) else { return path }
        return Array(path[first...]) + [current]
    }

    /// Decodes a tree from JSON: an array of nodes, or an object `{"nodes": [...]}`.
    public init(json: Data) throws(PowerInputError) {
        struct Wrapped: Decodable { var nodes: [FeederNode] }
        let first = json.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if first == UInt8(ascii: "[") {
            try self.init(nodes: GridJSON.decode([FeederNode].self, from: json, what: "feeder tree"))
        } else {
            try self.init(nodes: GridJSON.decode(Wrapped.self, from: json, what: "feeder tree").nodes)
        }
    }

    /// Parses a tree from CSV with columns `id,parent,role[,customers][,name]`; an empty
    /// parent marks a root, an empty customers means the role's default.
    public init(csv text: String) throws(PowerInputError) {
        let table = try CSVTable(parsing: text)
        let idColumn = try table.requiredColumn("id", "device")
        let parentColumn = try table.requiredColumn("parent")
        let roleColumn = try table.requiredColumn("role")
        let customersColumn = table.column("customers")
        let nameColumn = table.column("name")
        var nodes: [FeederNode] = []
        for (line, fields) in table.rows {
            guard let role = FeederRole(rawValue: fields[roleColumn].lowercased()) else {
                throw PowerInputError(
                    "line \(line), role: \"\(fields[roleColumn].prefix(40))\" is not one of master, branch, load, generator, meter"
                )
            }
            var customers: Int?
            if let customersColumn, !fields[customersColumn].isEmpty {
                guard let value = Int(fields[customersColumn]) else {
                    throw PowerInputError(
                        "line \(line), customers: \"\(fields[customersColumn].prefix(40))\" is not a whole number"
                    )
                }
                customers = value
            }
            let parent = fields[parentColumn]
            let name = nameColumn.map { fields[$0] }
            nodes.append(
                FeederNode(
                    id: fields[idColumn], parent: parent.isEmpty ? nil : parent, role: role,
                    customers: customers,
                    name: name?.isEmpty == false ? name : nil))
        }
        try self.init(nodes: nodes)
    }

    /// Decodes the list of nodes and checks it as ``init(nodes:)`` does.
    public init(from decoder: any Decoder) throws {
        let nodes = try decoder.singleValueContainer().decode([FeederNode].self)
        do {
            try self.init(nodes: nodes)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// Encodes the list of nodes, in input order.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(nodes)
    }

    /// The node with this id, or nil.
    public func node(_ id: String) -> FeederNode? { index[id].map { nodes[$0] } }

    /// The node with this id, or an error naming it.
    public func requireNode(_ id: String) throws(PowerInputError) -> FeederNode {
        guard let node = node(id) else {
            throw PowerInputError("device \(id) is not in the feeder tree")
        }
        return node
    }

    /// The direct children of a node, in input order.
    public func children(of id: String) throws(PowerInputError) -> [String] {
        _ = try requireNode(id)
        return childIDs[id] ?? []
    }

    /// The whole subtree below a node (not the node itself), breadth-first, children in input order.
    public func downstream(of id: String) throws(PowerInputError) -> [String] {
        _ = try requireNode(id)
        var result: [String] = []
        var queue = childIDs[id] ?? []
        var head = 0
        while head < queue.count {
            let next = queue[head]
            head += 1
            result.append(next)
            queue.append(contentsOf: childIDs[next] ?? [])
        }
        return result
    }

    /// The ancestors of a node, nearest first, ending with its root.
    public func upstream(of id: String) throws(PowerInputError) -> [String] {
        var result: [String] = []
        var current = try requireNode(id)
        while let parent = current.parent, let node = node(parent) {
            result.append(parent)
            current = node
        }
        return result
    }

    /// The depth of a node: 0 for a root.
    public func depth(of id: String) throws(PowerInputError) -> Int { try upstream(of: id).count }

    /// The root of the feeder the node is on (the node itself for a root).
    public func feeder(of id: String) throws(PowerInputError) -> String {
        try upstream(of: id).last ?? id
    }

    /// The branch a node is on: the nearest node with role `branch` at or above it, or nil
    /// when there is none (the master, or a device directly under the master).
    public func branch(of id: String) throws(PowerInputError) -> String? {
        try ([id] + upstream(of: id)).first { node($0)?.role == .branch }
    }

    /// Nodes with role `branch`, in input order.
    public var branches: [String] { nodes.filter { $0.role == .branch }.map(\.id) }

    /// The node and its whole subtree.
    public func subtree(of id: String) throws(PowerInputError) -> [String] {
        try [id] + downstream(of: id)
    }

    /// Customers served by a node and everything below it.
    public func customers(under id: String) throws(PowerInputError) -> Int {
        try subtree(of: id).reduce(0) { $0 + (node($1)?.customerCount ?? 0) }
    }

    /// Customers served by every feeder in the tree.
    public var totalCustomers: Int { nodes.reduce(0) { $0 + $1.customerCount } }
}

// MARK: - JSON input

/// Decodes grid inputs, turning decoding errors into ``PowerInputError``s that name the field.
enum GridJSON {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String)
        throws(PowerInputError) -> T
    {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw PowerInputError("\(what): \(describe(error))")
        } catch {
            throw PowerInputError("\(what): not valid JSON")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "top level" : text
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context): return "\(path(context.codingPath)) has the wrong type"
        case .valueNotFound(_, let context): return "\(path(context.codingPath)) is null"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "not valid"
        }
    }
}
