// Deep links: the page and its filters round-trip through the address's fragment; the launch token's
// fragment is not mistaken for one.
import { describe, expect, it } from 'vitest';
import { formatLink, parseLink } from '../../renderer/src/lib/deep-link.js';

describe('deep links', () => {
  it('round-trips a page with filters and an item', () => {
    const link = { page: 'gallery', params: { job: 'abc-1', q: 'a red car & more', flagged: '1', item: '42' } };
    expect(parseLink(formatLink(link))).toEqual(link);
  });
  it('leaves out empty parameters', () => {
    expect(formatLink({ page: 'gallery', params: { job: '', q: 'x' } })).toBe('#/gallery?q=x');
    expect(formatLink({ page: 'search', params: {} })).toBe('#/search');
  });
  it('is not the launch token, nor an empty fragment', () => {
    expect(parseLink('#token=abcdef')).toBeNull();
    expect(parseLink('')).toBeNull();
    expect(parseLink('#/')).toBeNull();
  });
});
