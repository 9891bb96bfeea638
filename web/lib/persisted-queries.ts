import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

/** Hex SHA-256 of a query's text, with the Web Crypto API of browsers and Node. */
async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Automatic persisted queries as Apollo Server expects them: a request carries the query's sha256
 * hash instead of its text, and the text only after the gateway answers PersistedQueryNotFound. With
 * `get`, hashed queries go as GET, so a browser's HTTP cache revalidates them with the gateway's
 * ETag (304, no body, when the answer has not changed). Web Crypto exists only in secure contexts
 * (https, localhost): elsewhere queries go whole, as before.
 */
export function persistedQueries(options: { get: boolean }): PersistedQueryLink | null {
  if (typeof crypto === 'undefined' || !crypto.subtle) return null;
  return new PersistedQueryLink({ sha256, useGETForHashedQueries: options.get });
}
