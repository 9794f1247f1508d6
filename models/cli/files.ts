import { access } from 'node:fs/promises';

/** Whether a path exists (a data set's manifest, a truth folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
