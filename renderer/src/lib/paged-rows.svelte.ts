/**
 * A long list read from the backend page by page as the user scrolls: only the pages in view are fetched,
 * answers for an older query are dropped, and a new query starts from an empty cache.
 */
export type PageFetcher<T> = (offset: number, limit: number) => Promise<{ total: number; rows: T[] } | null>;

export class PagedRows<T> {
  total = $state(0);
  /** Rows by page number; a page is fetched once per query. */
  pages = $state<Record<number, T[]>>({});
  loaded = $state(false);
  private fetcher: PageFetcher<T> | null = null;
  private generation = 0;
  private inFlight = new Set<number>();

  constructor(readonly pageSize = 200) {}

  /** Starts over with a new query (or the same query after the data changed). */
  reset(fetcher: PageFetcher<T>): void {
    this.fetcher = fetcher;
    this.generation++;
    this.inFlight.clear();
    this.pages = {};
    this.loaded = false;
    void this.fetchPage(0);
  }

  at(index: number): T | undefined {
    return this.pages[Math.floor(index / this.pageSize)]?.[index % this.pageSize];
  }

  /** Makes sure rows [from, to) are loaded or on their way. */
  ensure(from: number, to: number): void {
    const last = Math.min(to, this.total) - 1;
    for (let p = Math.floor(Math.max(0, from) / this.pageSize); p <= Math.floor(last / this.pageSize); p++) {
      if (!this.pages[p] && !this.inFlight.has(p)) void this.fetchPage(p);
    }
  }

  private async fetchPage(page: number): Promise<void> {
    const generation = this.generation;
    const fetcher = this.fetcher;
    if (!fetcher) return;
    this.inFlight.add(page);
    const r = await fetcher(page * this.pageSize, this.pageSize);
    if (generation !== this.generation) return; // the query changed meanwhile
    this.inFlight.delete(page);
    if (!r) return;
    this.total = r.total;
    this.pages[page] = r.rows;
    this.loaded = true;
  }
}
