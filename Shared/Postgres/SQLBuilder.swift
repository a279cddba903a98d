package import PostgresNIO

/// A query put together from fixed fragments with every value bound (`$n`), for queries whose
/// shape depends on the request (searches). Only literal SQL of the calling module goes into `sql`.
package struct SQLBuilder {
    package private(set) var sql = ""
    package private(set) var bindings = PostgresBindings()
    private var count = 0

    package init() {}

    /// Binds a value and returns its placeholder.
    package mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        bindings.append(value, context: .default)
        count += 1
        return "$\(count)"
    }

    package mutating func append(_ fragment: String) {
        sql += fragment
    }

    package var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}
