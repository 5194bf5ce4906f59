/**
 * Deep links: the page, its filters and the item shown live in the address's fragment
 * (`#/gallery?job=…&flagged=1&item=42`), so a reload or a copied address opens the same view. The
 * launch token also travels in the fragment (`#token=…`) but is taken out before this runs.
 */

export interface Link {
  page: string;
  params: Record<string, string>;
}

/** The link in a fragment, or null when it holds none. */
export function parseLink(hash: string): Link | null {
  const m = /^#\/([a-z]+)(?:\?(.*))?$/.exec(hash);
  if (!m) return null;
  return { page: m[1], params: Object.fromEntries(new URLSearchParams(m[2] ?? '')) };
}

/** The fragment of a link; empty parameters are left out. */
export function formatLink(link: Link): string {
  const kept = Object.entries(link.params).filter(([, v]) => v !== '');
  return `#/${link.page}${kept.length ? `?${new URLSearchParams(kept).toString()}` : ''}`;
}

/** The link the app was opened with, taken once by the page it names. */
let initial: Link | null = typeof location === 'undefined' ? null : parseLink(location.hash);

export function initialPage(): string | null {
  return initial?.page ?? null;
}

/** The parameters the app was opened with for `page`, once (a later visit starts from the page's memory). */
export function takeLinkParams(page: string): Record<string, string> | null {
  if (!initial || initial.page !== page) return null;
  const params = initial.params;
  initial = null;
  return params;
}

/** Writes the current view into the address without a new history entry. */
export function writeLink(link: Link): void {
  const hash = formatLink(link);
  if (location.hash !== hash) history.replaceState(history.state, '', `${location.pathname}${location.search}${hash}`);
}
