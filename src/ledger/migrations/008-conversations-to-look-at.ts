import { sql, type Kysely } from 'kysely';

/**
 * Conversations made by a version that did not mark those made without their chat's details (before
 * 007), or that marked them only for connectors (and modes) able to rename at the time: some hold
 * placeholder names nothing would ever change. Every conversation present at the
 * upgrade gets `details_pending = 2`, "to look at": on its connector's first dispatch run it
 * becomes 1 (claimed and named like one made without details; the connector renames only names
 * that are still placeholders, so a manager's name stays) where the connector can rename, else 0.
 * A new ledger has no conversations here, so nothing is looked at twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`UPDATE conversations SET details_pending = 2 WHERE details_pending = 0`.execute(db);
}
