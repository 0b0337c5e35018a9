/** `AVITO_SYNC_DB` values that select PostgreSQL: `postgres://…` or `postgresql://…`. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location.trim());
}

/** A PostgreSQL URL as it may be shown: without its password (invariant 6). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    return u.toString().replace(/:@/, '@');
  } catch {
    return 'postgres://…';
  }
}
