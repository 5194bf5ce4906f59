// Deep links of the Detection, Search and SolidMark pages: their selection round-trips through the
// address; malformed values are dropped, not trusted.
import { describe, expect, it } from 'vitest';
import { formatLink, parseLink } from '../../renderer/src/lib/deep-link.js';
import {
  detectionLinkParams,
  parseDetectionLink,
  parseSearchLink,
  parseSolidmarkLink,
  searchLinkParams,
  solidmarkLinkParams,
} from '../../renderer/src/lib/page-links.js';

const through = (page: string, params: Record<string, string>) => parseLink(formatLink({ page, params }))!.params;

describe('page deep links', () => {
  it('Detection keeps its job', () => {
    expect(parseDetectionLink(through('detection', detectionLinkParams({ job: 'a1b2-c3_d4' })))).toEqual({ job: 'a1b2-c3_d4' });
    expect(formatLink({ page: 'detection', params: detectionLinkParams({ job: null }) })).toBe('#/detection');
    expect(parseDetectionLink(parseLink('#/detection?job=%3Cscript%3E')!.params)).toEqual({ job: null });
  });
  it('Search keeps its run', () => {
    expect(formatLink({ page: 'search', params: searchLinkParams({ run: 7 }) })).toBe('#/search?run=7');
    expect(parseSearchLink(parseLink('#/search?run=7')!.params)).toEqual({ run: 7 });
    for (const bad of ['0', '-3', '2.5', 'x', '']) expect(parseSearchLink({ run: bad })).toEqual({ run: null });
    expect(parseSearchLink({})).toEqual({ run: null });
  });
  it('SolidMark keeps its job, view and error filter; defaults stay out of the address', () => {
    const link = { job: 'job-9', view: 'duplicated' as const, maxError: 0.25 };
    expect(parseSolidmarkLink(through('solidmark', solidmarkLinkParams(link)))).toEqual(link);
    expect(formatLink({ page: 'solidmark', params: solidmarkLinkParams({ job: null, view: 'all', maxError: 1 }) })).toBe('#/solidmark');
    expect(parseSolidmarkLink({ view: 'everything', maxError: '7' })).toEqual({ job: null, view: 'all', maxError: 1 });
    expect(parseSolidmarkLink({ maxError: '1e-3' })).toEqual({ job: null, view: 'all', maxError: 1 });
    expect(parseSolidmarkLink({ maxError: '0' }).maxError).toBe(0);
  });
});
