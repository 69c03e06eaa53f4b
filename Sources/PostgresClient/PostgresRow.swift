import Foundation

/// One row of a result, with every value in PostgreSQL's text format.
///
/// Look values up by column name (the first column of that name wins) or by position.
/// The typed accessors throw `PostgresError.decoding` naming the column when the value is
/// NULL, the column does not exist, or the text is not of the asked type; the
/// `optional…` accessors return `nil` in all of those cases.
public struct PostgresRow: Sendable {
    /// Column names, in result order.
    public let columns: [String]
    /// Values in column order; `nil` is SQL NULL.
    public let values: [String?]
    /// Column name → first position with that name (shared by all rows of a result).
    private let positions: [String: Int]

    /// Makes a row (mostly for tests); `values` must have one entry per column.
    public init(columns: [String], values: [String?]) {
        precondition(columns.count == values.count, "a row needs one value per column")
        self.init(columns: columns, positions: Self.positions(of: columns), values: values)
    }

    init(columns: [String], positions: [String: Int], values: [String?]) {
        self.columns = columns
        self.positions = positions
        self.values = values
    }

    static func positions(of columns: [String]) -> [String: Int] {
        var positions: [String: Int] = [:]
        for (index, name) in columns.enumerated() where positions[name] == nil {
            positions[name] = index
        }
        return positions
    }

    /// The text of `column`, or `nil` for NULL or a column that does not exist.
    public subscript(_ column: String) -> String? {
        guard let index = positions[column] else { return nil }
        return values[index]
    }

    /// The text of the column at `index`, or `nil` for NULL or an index out of range.
    public subscript(_ index: Int) -> String? {
        guard values.indices.contains(index) else { return nil }
        return values[index]
    }

    /// Whether the row has a column named `column`.
    public func contains(_ column: String) -> Bool {
        positions[column] != nil
    }

    /// The text of `column`. Throws `.decoding` when it is NULL or missing.
    public func string(_ column: String) throws(PostgresError) -> String {
        try text(column)
    }

    /// The text of `column`, or `nil` when it is NULL or missing.
    public func optionalString(_ column: String) -> String? {
        self[column]
    }

    /// `column` as an `Int` (`smallint`, `integer`, `bigint`).
    public func int(_ column: String) throws(PostgresError) -> Int {
        let text = try text(column)
        guard let value = Int(text) else { throw mismatch(column, text, "an integer") }
        return value
    }

    /// `column` as an `Int`, or `nil` when it is NULL, missing or not an integer.
    public func optionalInt(_ column: String) -> Int? {
        self[column].flatMap { Int($0) }
    }

    /// `column` as an `Int64`.
    public func int64(_ column: String) throws(PostgresError) -> Int64 {
        let text = try text(column)
        guard let value = Int64(text) else { throw mismatch(column, text, "a 64-bit integer") }
        return value
    }

    /// `column` as an `Int64`, or `nil` when it is NULL, missing or not an integer.
    public func optionalInt64(_ column: String) -> Int64? {
        self[column].flatMap { Int64($0) }
    }

    /// `column` as a `Bool` (PostgreSQL prints `t` / `f`; `true` / `false` are accepted too).
    public func bool(_ column: String) throws(PostgresError) -> Bool {
        let text = try text(column)
        guard let value = Self.parseBool(text) else { throw mismatch(column, text, "a boolean ('t' or 'f')") }
        return value
    }

    /// `column` as a `Bool`, or `nil` when it is NULL, missing or not a boolean.
    public func optionalBool(_ column: String) -> Bool? {
        self[column].flatMap { Self.parseBool($0) }
    }

    /// `column` as a `Double` (`real`, `double precision`, `numeric`, integers;
    /// `Infinity`, `-Infinity`, `NaN` too).
    public func double(_ column: String) throws(PostgresError) -> Double {
        let text = try text(column)
        guard let value = Self.parseDouble(text) else { throw mismatch(column, text, "a number") }
        return value
    }

    /// `column` as a `Double`, or `nil` when it is NULL, missing or not a number.
    public func optionalDouble(_ column: String) -> Double? {
        self[column].flatMap { Self.parseDouble($0) }
    }

    /// `column` as a `Date`, from a `timestamptz` as PostgreSQL prints it with DateStyle ISO
    /// (`2026-11-24 10:00:00.123+00`, `…+05:30`, with 0–6 fractional digits). A
    /// `timestamp` without offset is read as UTC, a `date` as midnight UTC, and
    /// `infinity` / `-infinity` as `Date.distantFuture` / `Date.distantPast`.
    public func date(_ column: String) throws(PostgresError) -> Date {
        let text = try text(column)
        guard let value = PostgresTimestamp.parse(text) else { throw mismatch(column, text, "a timestamp") }
        return value
    }

    /// `column` as a `Date`, or `nil` when it is NULL, missing or not a timestamp.
    public func optionalDate(_ column: String) -> Date? {
        self[column].flatMap { PostgresTimestamp.parse($0) }
    }

    /// `column` as a `UUID`.
    public func uuid(_ column: String) throws(PostgresError) -> UUID {
        let text = try text(column)
        guard let value = UUID(uuidString: text) else { throw mismatch(column, text, "a UUID") }
        return value
    }

    private func text(_ column: String) throws(PostgresError) -> String {
        guard let index = positions[column] else {
            throw .decoding("no column named \"\(column)\" in the result (columns: \(columns.joined(separator: ", ")))")
        }
        guard let value = values[index] else {
            throw .decoding("column \"\(column)\" is NULL")
        }
        return value
    }

    private func mismatch(_ column: String, _ text: String, _ expected: String) -> PostgresError {
        let shown = text.count > 64 ? String(text.prefix(64)) + "…" : text
        return .decoding("column \"\(column)\" is not \(expected): '\(shown)'")
    }

    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "t", "true": return true
        case "f", "false": return false
        default: return nil
        }
    }

    static func parseDouble(_ text: String) -> Double? {
        switch text {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default:
            // Refuse Swift-only spellings such as "inf" or "0x1p3" that PostgreSQL never prints.
            guard let first = text.utf8.first,
                first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
                !text.contains("x"), !text.contains("X")
            else { return nil }
            return Double(text)
        }
    }
}

/// The outcome of one statement.
public struct PostgresResult: Sendable {
    /// The rows returned (empty for statements that return none).
    public let rows: [PostgresRow]
    /// Rows inserted, updated, deleted, selected, … as the server reports it
    /// (`PQcmdTuples`); 0 when the command reports no count.
    public let affectedRows: Int
    /// The command tag, e.g. `INSERT 0 5`, `UPDATE 3`, `SELECT 1`, `BEGIN`.
    public let commandTag: String

    /// Makes a result (mostly for tests).
    public init(rows: [PostgresRow], affectedRows: Int, commandTag: String = "") {
        self.rows = rows
        self.affectedRows = affectedRows
        self.commandTag = commandTag
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}
