/**
 * Version 13: an analyst's label on a stored detection evaluation (null: none given), so evaluations can be
 * told apart on the Detection page and in a report without renaming the prompt sets they were measured on.
 */
import type { Migration } from './types.js';

export const migration13: Migration = {
  version: 13,
  description: 'a label on each detection evaluation',
  sql: `ALTER TABLE detection_evaluations ADD COLUMN label TEXT;`,
};
