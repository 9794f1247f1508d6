/**
 * Preloaded into every benchmark child (`node --import tsx --import child-guard.ts ...`). The
 * benchmark keeps the child's stdin open as a pipe; when it closes, the benchmark process is gone
 * (killed before it could clean up), so the child stops itself instead of living on as an orphan:
 * SIGTERM first, for the child's own graceful shutdown, then a hard exit if that hangs.
 */
const HARD_EXIT_AFTER_MS = 15_000;

process.stdin.on('end', () => {
  setTimeout(() => process.exit(1), HARD_EXIT_AFTER_MS).unref();
  process.kill(process.pid, 'SIGTERM');
});
process.stdin.on('error', () => undefined);
process.stdin.resume();
// Reading stdin must not be what keeps the child alive once its own work is done.
(process.stdin as { unref?: () => void }).unref?.();
