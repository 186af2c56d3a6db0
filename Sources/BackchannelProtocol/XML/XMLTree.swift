/// A resolved XML name: the namespace URI the prefix stood for, and the local part.
public struct XMLName: Sendable, Hashable, CustomStringConvertible {
    /// The namespace URI, or `nil` for a name in no namespace.
    public var namespace: String?
    /// The local part of the name, without any prefix.
    public var local: String

    /// Creates a resolved name.
    public init(namespace: String?, local: String) {
        self.namespace = namespace
        self.local = local
    }

    /// Creates a resolved name from its local part and, optionally, a namespace URI.
    public init(_ local: String, namespace: String? = nil) {
        self.namespace = namespace
        self.local = local
    }

    /// The name in Clark notation, `{namespace}local`, or just `local` when it has no namespace.
    public var description: String { namespace.map { "{\($0)}\(local)" } ?? local }
}

/// An attribute of an element (namespace declarations are kept apart, in
/// ``XMLElement/namespaceDeclarations``).
public struct XMLAttribute: Sendable, Hashable {
    /// The resolved name. An unprefixed attribute is in no namespace.
    public var name: XMLName
    /// The prefix as written, or `nil` when the attribute was unprefixed.
    public var prefix: String?
    /// The value, with references replaced and literal tab, CR and LF normalised to spaces.
    public var value: String

    /// Creates an attribute.
    public init(name: XMLName, prefix: String? = nil, value: String) {
        self.name = name
        self.prefix = prefix
        self.value = value
    }
}

/// A node in an element's content: a child element or a run of character data.
public enum XMLNode: Sendable, Hashable {
    /// A child element.
    case element(XMLElement)
    /// Character data, with references replaced and CDATA sections merged in.
    case text(String)
}

/// An element of a parsed (or hand-built) XML tree.
///
/// Equality and hashing compare names, prefixes, attributes, namespace declarations and children;
/// ``range`` records where the element was parsed from and is not part of equality.
public struct XMLElement: Sendable, Hashable {
    /// The resolved name.
    public var name: XMLName
    /// The prefix as written, or `nil` when the name was unprefixed.
    public var prefix: String?
    /// The attributes in document order, without the `xmlns` and `xmlns:p` declarations.
    public var attributes: [XMLAttribute]
    /// The namespace declarations made on this element: prefix (`""` for the default namespace)
    /// to URI (`""` when the default namespace is undeclared).
    public var namespaceDeclarations: [String: String]
    /// The content. Adjacent text is merged into one node; in an element that has child elements,
    /// text nodes made only of XML whitespace are dropped.
    public var children: [XMLNode]
    /// Indices into the parsed `Data`, from the `<` of the start tag to just after the `>` of the
    /// end tag (or of the empty-element tag), so `data[element.range]` is the element's source.
    public var range: Range<Int>

    /// Creates an element.
    public init(
        name: XMLName, prefix: String? = nil, attributes: [XMLAttribute] = [],
        namespaceDeclarations: [String: String] = [:], children: [XMLNode] = [], range: Range<Int> = 0..<0
    ) {
        self.name = name
        self.prefix = prefix
        self.attributes = attributes
        self.namespaceDeclarations = namespaceDeclarations
        self.children = children
        self.range = range
    }

    /// The value of the attribute with this local name and namespace (`nil`: an unprefixed attribute).
    public func attribute(_ local: String, namespace: String? = nil) -> String? {
        attributes.first { $0.name.local == local && $0.name.namespace == namespace }?.value
    }

    /// The child elements, in document order, without the text between them.
    public var elements: [XMLElement] {
        children.compactMap { node in
            if case .element(let element) = node { return element }
            return nil
        }
    }

    /// The first child element with this local name and namespace.
    public func first(_ local: String, namespace: String?) -> XMLElement? {
        for case .element(let element) in children
        where element.name.local == local && element.name.namespace == namespace {
            return element
        }
        return nil
    }

    /// Every child element with this local name and namespace, in document order.
    public func all(_ local: String, namespace: String?) -> [XMLElement] {
        elements.filter { $0.name.local == local && $0.name.namespace == namespace }
    }

    /// The direct text content (CDATA included), concatenated; text inside child elements is not included.
    public var text: String {
        var result = ""
        for case .text(let text) in children { result += text }
        return result
    }

    /// Compares everything but ``range``.
    public static func == (lhs: XMLElement, rhs: XMLElement) -> Bool {
        lhs.name == rhs.name && lhs.prefix == rhs.prefix && lhs.attributes == rhs.attributes
            && lhs.namespaceDeclarations == rhs.namespaceDeclarations && lhs.children == rhs.children
    }

    /// Hashes everything but ``range``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(prefix)
        hasher.combine(attributes)
        hasher.combine(namespaceDeclarations)
        hasher.combine(children)
    }
}

/// Limits ``XMLReader`` enforces while parsing; exceeding any of them fails the parse.
public struct XMLLimits: Sendable, Hashable {
    /// Largest document, in bytes. Checked before anything is scanned.
    public var maxBytes: Int = 4 << 20
    /// Deepest element nesting; the root element is at depth 1.
    public var maxDepth: Int = 64
    /// Most elements in the whole document.
    public var maxElements: Int = 100_000
    /// Most attributes on one element, namespace declarations included.
    public var maxAttributesPerElement: Int = 64
    /// Longest element or attribute name, prefix included, in UTF-8 bytes.
    public var maxNameBytes: Int = 256
    /// Longest text node or attribute value, in UTF-8 bytes after references are replaced.
    public var maxTextBytes: Int = 1 << 20

    /// Limits with the default values.
    public init() {}
}

/// Why a document was rejected, with the line and column (in characters, both from 1) where the
/// problem was found; both are 0 when it is not tied to a position.
///
/// The description never quotes document content other than element and attribute names, which
/// are cut to 64 bytes.
public struct XMLError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case doctypeForbidden, tooLarge, tooDeep, tooManyElements, tooManyAttributes, nameTooLong, textTooLong
        case malformed, unboundPrefix
    }

    private let code: Code
    /// What is wrong, without the position.
    public var message: String
    /// The line of the problem, from 1; 0 when it is not tied to a position.
    public var line: Int
    /// The column of the problem in characters, from 1; 0 when it is not tied to a position.
    public var column: Int

    private init(_ code: Code, _ message: String, _ line: Int, _ column: Int) {
        self.code = code
        self.message = message
        self.line = line
        self.column = column
    }

    /// The document has a document type declaration; DTDs (and so entity declarations) are not accepted.
    public static func doctypeForbidden(line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.doctypeForbidden, "DOCTYPE is not allowed", line, column)
    }
    /// The document is larger than ``XMLLimits/maxBytes``.
    public static func tooLarge(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.tooLarge, message, line, column)
    }
    /// Elements are nested deeper than ``XMLLimits/maxDepth``.
    public static func tooDeep(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.tooDeep, message, line, column)
    }
    /// The document has more than ``XMLLimits/maxElements`` elements.
    public static func tooManyElements(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.tooManyElements, message, line, column)
    }
    /// An element has more than ``XMLLimits/maxAttributesPerElement`` attributes.
    public static func tooManyAttributes(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.tooManyAttributes, message, line, column)
    }
    /// A name is longer than ``XMLLimits/maxNameBytes``.
    public static func nameTooLong(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.nameTooLong, message, line, column)
    }
    /// A text node or attribute value is longer than ``XMLLimits/maxTextBytes``.
    public static func textTooLong(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.textTooLong, message, line, column)
    }
    /// The document is not well-formed XML, or not in the shape expected of it.
    public static func malformed(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.malformed, message, line, column)
    }
    /// A name uses a namespace prefix that is not declared in scope.
    public static func unboundPrefix(_ message: String, line: Int = 0, column: Int = 0) -> XMLError {
        XMLError(.unboundPrefix, message, line, column)
    }

    /// Whether the document has a DOCTYPE.
    public var isDoctypeForbidden: Bool { code == .doctypeForbidden }
    /// Whether one of the ``XMLLimits`` was exceeded.
    public var isLimit: Bool {
        switch code {
        case .tooLarge, .tooDeep, .tooManyElements, .tooManyAttributes, .nameTooLong, .textTooLong: true
        case .doctypeForbidden, .malformed, .unboundPrefix: false
        }
    }
    /// Whether the document exceeds ``XMLLimits/maxBytes``.
    public var isTooLarge: Bool { code == .tooLarge }
    /// Whether the elements nest deeper than ``XMLLimits/maxDepth``.
    public var isTooDeep: Bool { code == .tooDeep }
    /// Whether the document has more than ``XMLLimits/maxElements`` elements.
    public var isTooManyElements: Bool { code == .tooManyElements }
    /// Whether an element has more than ``XMLLimits/maxAttributesPerElement`` attributes.
    public var isTooManyAttributes: Bool { code == .tooManyAttributes }
    /// Whether a name is longer than ``XMLLimits/maxNameBytes``.
    public var isNameTooLong: Bool { code == .nameTooLong }
    /// Whether a text node or attribute value is longer than ``XMLLimits/maxTextBytes``.
    public var isTextTooLong: Bool { code == .textTooLong }
    /// Whether the document is not well-formed (or not in the expected shape).
    public var isMalformed: Bool { code == .malformed }
    /// Whether a namespace prefix is not declared.
    public var isUnboundPrefix: Bool { code == .unboundPrefix }

    /// `line L, column C: message`, or just the message when there is no position.
    public var description: String { line > 0 ? "line \(line), column \(column): \(message)" : message }

    /// A name fit to appear in a message: cut to at most 64 bytes, on a character boundary.
    static func quoted(_ name: String) -> String {
        guard name.utf8.count > 64 else { return name }
        var result = ""
        for scalar in name.unicodeScalars {
            guard result.utf8.count + String(scalar).utf8.count <= 61 else { break }
            result.unicodeScalars.append(scalar)
        }
        return result + "..."
    }
}
