/**
 * Writes a versioned artefact folder all at once: every file goes into a hidden staging folder
 * beside it, which is renamed into place only when complete. A reader (a serving host, the newest-
 * version lookup) never sees a half-written model; a failed write leaves nothing behind.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Writes `files` (relative paths, sub-folders allowed) into `<root>/<version>` and returns that
 * folder. An earlier staging folder of the same version, left by a crash, is replaced.
 */
export async function writeArtifactFolder(
  root: string,
  version: string,
  files: Iterable<readonly [string, Uint8Array | string]>,
): Promise<string> {
  await mkdir(root, { recursive: true });
  const dir = join(root, version);
  const staging = join(root, `.${version}.partial`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  try {
    for (const [file, bytes] of files) {
      const path = join(staging, file);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, bytes);
    }
    await rename(staging, dir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return dir;
}
