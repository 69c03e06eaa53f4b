import PostgresClient

/// The daemon's schema, applied at start under an advisory lock (`medianest-worker migrate` runs it alone).
package enum Schema {
    /// Advisory lock key for migrations: "medianest" folded into 63 bits.
    package static let lockKey: Int64 = 0x6D65_6469_616E_6573

    /// Every migration, in version order. Each lives in Store/Migrations/ with its own version number.
    package static let migrations: [Migration] = [
        Migrations.jobs,
        Migrations.youtube,
        Migrations.integrations,
        Migrations.operations,
        Migrations.plexRatingKey,
        Migrations.outbox,
        Migrations.sharedTables,
        Migrations.subscriptions,
        Migrations.unfinishedIndex,
    ]
}

/// Namespace of the individual migrations.
package enum Migrations {}
