/**
 * What every importer writes into: the data set being built and the reports of the files read.
 */
import type { DatasetBuilder } from './builder.js';
import { newFileReport } from './report.js';
import type { FileReport, ImportProgressListener } from './report.js';

export interface ImportContext {
  readonly builder: DatasetBuilder;
  readonly files: FileReport[];
  /** Most frequent free-form tags kept per item (categories do not count against it). */
  readonly maxTagsPerItem: number;
  readonly onProgress?: ImportProgressListener;
}

/** Starts the report of one file and adds it to the context's list. */
export function fileReport(ctx: ImportContext, file: string, role: FileReport['role']): FileReport {
  const report = newFileReport(file, role);
  ctx.files.push(report);
  return report;
}

/**
 * Counts tag uses per item, then hands each item its most used tags (ties by name), in item order
 * so the tag vocabulary does not depend on the order of the tag file.
 */
export class TagCounter {
  private readonly counts = new Map<string, Map<string, number>>();

  add(itemId: string, tag: string): void {
    let forItem = this.counts.get(itemId);
    if (forItem === undefined) {
      forItem = new Map();
      this.counts.set(itemId, forItem);
    }
    forItem.set(tag, (forItem.get(tag) ?? 0) + 1);
  }

  applyTo(ctx: ImportContext): void {
    for (const itemId of ctx.builder.itemIds.names) {
      const forItem = this.counts.get(itemId);
      if (forItem === undefined) continue;
      const top = [...forItem]
        .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, ctx.maxTagsPerItem)
        .map(([tag]) => tag);
      ctx.builder.addItemTags(itemId, top);
    }
  }
}
