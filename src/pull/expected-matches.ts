import type { ScannedSearchPage } from '../fhir';

/**
 * The matches a searchset page says its query has: `Bundle.total`
 * (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.total — "the number of matches", not the
 * `_include`d resources; for `$everything`, what the operation returns). Pull progress shows it beside
 * what is stored. Only a whole number a PostgreSQL integer holds counts: a server's nonsense is not
 * progress.
 */
export function expectedMatchesOf(page: Pick<ScannedSearchPage, 'envelope'>): number | undefined {
  const total: unknown = page.envelope.total;
  return typeof total === 'number' && Number.isInteger(total) && total >= 0 && total <= 2_147_483_647 ? total : undefined;
}
